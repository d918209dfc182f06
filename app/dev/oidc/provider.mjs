// The local development OpenID Provider: panva's oidc-provider, configured from a JSON file
// that app/dev/identity_provider.py writes. Development only (devInteractions log anyone in).
//
//   node provider.mjs serve CONFIG_JSON_PATH   serve until SIGTERM/SIGINT
//   node provider.mjs rotate-keys JWKS_PATH    put a new signing key first, keep the previous
//
// Every HTTP request is logged to stdout as one line, `METHOD /path STATUS`, and readiness as
// `listening on ISSUER`.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider signs with the first key of a kind; the second still verifies older tokens.
const KEPT_KEYS = 2;

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(12).toString('base64url'),
    alg: 'RS256',
    use: 'sig',
  };
}

function readKeys(jwksPath) {
  try {
    return JSON.parse(fs.readFileSync(jwksPath, 'utf8')).keys;
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

function writeKeys(jwksPath, keys) {
  // Written beside and renamed over, so a reader never sees half a file.
  const partial = `${jwksPath}.partial`;
  fs.writeFileSync(partial, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(partial, 0o600);
  fs.renameSync(partial, jwksPath);
}

function rotateKeys(jwksPath) {
  const keys = [newSigningKey(), ...readKeys(jwksPath)].slice(0, KEPT_KEYS);
  writeKeys(jwksPath, keys);
  return keys;
}

function loadOrCreateKeys(jwksPath) {
  const keys = readKeys(jwksPath);
  return keys.length ? keys : rotateKeys(jwksPath);
}

// Any login name is an account; its claims follow from the name.
function accountClaims(login) {
  return {
    sub: login,
    email: `${login}@example.com`,
    email_verified: true,
    name: login,
  };
}

function clientMetadata(client) {
  const isPublic = client.client_secret === null;
  const grantTypes = client.grant_types;
  return {
    client_id: client.client_id,
    ...(isPublic ? { token_endpoint_auth_method: 'none' } : { client_secret: client.client_secret }),
    scope: client.scope,
    roles: client.roles,
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    redirect_uris: client.redirect_uris,
  };
}

function providerConfiguration(config, keys) {
  const clientRoles = new Map(config.clients.map((client) => [client.client_id, client.roles]));
  const resourceScope = config.scopes.join(' ');

  return {
    clients: config.clients.map(clientMetadata),
    jwks: { keys },
    cookies: { keys: config.cookieKeys },
    // Client metadata may only name scopes the provider knows, so the API's scopes are listed
    // beside the OpenID ones; the access token gets those of the resource server.
    scopes: ['openid', 'offline_access', ...config.scopes],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    extraClientMetadata: { properties: ['roles'] },
    clientBasedCORS: () => true,
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    ttl: {
      AccessToken: config.accessTokenTtl,
      ClientCredentials: config.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: config.accessTokenTtl,
      Interaction: 600,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => config.audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== config.audience) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          return {
            scope: resourceScope,
            audience: config.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.accessTokenTtl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async findAccount(_ctx, accountId) {
      return { accountId, claims: async () => accountClaims(accountId) };
    },
    // Grants whatever a logged-in user asks for, so the flow has a login step and no consent.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const { accountId } = oidc.session;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (grant?.accountId !== accountId) {
        grant = new oidc.provider.Grant({ accountId, clientId: oidc.client.clientId });
      }
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      grant.addOIDCClaims([...oidc.requestParamClaims]);
      for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers)) {
        const granted = [...oidc.requestParamScopes].filter((scope) => resourceServer.scopes.has(scope));
        grant.addResourceScope(indicator, granted.join(' '));
      }
      await grant.save();
      return grant;
    },
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
      const claims = {};
      let roles;
      if (token.accountId) {
        const { email, name } = accountClaims(token.accountId);
        Object.assign(claims, { email, name });
        roles = config.accountRoles[token.accountId];
      } else {
        roles = clientRoles.get(token.clientId);
      }
      if (roles?.length) claims.roles = roles;
      return claims;
    },
  };
}

function serve(configPath) {
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const keys = loadOrCreateKeys(config.jwksPath);
  const provider = new Provider(config.issuer, providerConfiguration(config, keys));
  const handle = provider.callback();

  const server = http.createServer((req, res) => {
    // Logged as the response ends, before it reaches the client: a client that has its
    // answer finds its request in the log.
    let logged = false;
    const log = () => {
      if (!logged) console.log(`${req.method} ${req.url.split('?')[0]} ${res.statusCode}`);
      logged = true;
    };
    const { end } = res;
    res.end = function endAndLog(...args) {
      log();
      return end.apply(this, args);
    };
    res.on('close', log);
    handle(req, res);
  });
  server.keepAliveTimeout = 1000;
  server.on('error', (error) => {
    console.error(`cannot serve ${config.issuer}: ${error.code ?? error.message}`);
    process.exit(1);
  });
  server.listen(config.port, config.host, () => {
    console.log(`listening on ${config.issuer}`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Started in its own process group, so an interrupt of the parent does not reach it: it
  // stops by itself when the parent that started it is gone.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500).unref();
}

const [command, path] = process.argv.slice(2);
switch (path && command) {
  case 'serve':
    serve(path);
    break;
  case 'rotate-keys':
    console.log(`signing key ${rotateKeys(path)[0].kid}`);
    break;
  default:
    console.error('usage: node provider.mjs serve CONFIG_JSON_PATH | rotate-keys JWKS_PATH');
    process.exit(2);
}
