/**
 * The typed client of the Groundwork API.
 *
 * `schema.d.ts` is generated from ../openapi.json by openapi-typescript (`make client`); every
 * path, parameter, body and response below is checked against it by the TypeScript compiler.
 * Calls go through openapi-fetch, a thin wrapper over `fetch`: it works in browsers, Next.js
 * (server and client components) and Node alike.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.ts";

export type { components, operations, paths };

/** A task as the API returns it. */
export type Task = components["schemas"]["TaskRead"];
/** The fields to create a task. */
export type TaskCreate = components["schemas"]["TaskCreate"];
/** The fields to change on a task; omitted ones are kept. */
export type TaskUpdate = components["schemas"]["TaskUpdate"];
/** A user as the API returns it (also the caller's own profile, `/api/v1/me`). */
export type User = components["schemas"]["UserRead"];
/** An RFC 9457 problem: the body of every error response (`application/problem+json`). */
export type Problem = components["schemas"]["Problem"];

/** An access token, or a function that returns a current one (called before every request). */
export type TokenSource = string | (() => string | Promise<string>);

export interface GroundworkClientOptions {
  /** Where the API is, such as `https://api.example.com` (no trailing `/api/v1`). */
  baseUrl: string;
  /** The caller's OAuth 2.0 access token from the OpenID Provider, sent as a Bearer token. */
  token: TokenSource;
  /** A `fetch` of your own (tests, instrumentation); the global one by default. */
  fetch?: typeof globalThis.fetch;
}

export type GroundworkClient = Client<paths>;

/** Create a client that sends `Authorization: Bearer <token>` on every request. */
export function createGroundworkClient(options: GroundworkClientOptions): GroundworkClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  client.use(bearer(options.token));
  return client;
}

function bearer(token: TokenSource): Middleware {
  return {
    async onRequest({ request }) {
      const value = typeof token === "string" ? token : await token();
      request.headers.set("Authorization", `Bearer ${value}`);
      return request;
    },
  };
}

/** Whether `value` is a problem body: what every error response of the API carries. */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const body = value as Record<string, unknown>;
  return (
    typeof body.type === "string" &&
    typeof body.title === "string" &&
    typeof body.status === "number"
  );
}

/** An error response of the API, thrown by `unwrap`. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly response: Response;

  constructor(problem: Problem, response: Response) {
    super(`${problem.status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ""}`);
    this.name = "ProblemError";
    this.problem = problem;
    this.response = response;
  }
}

/**
 * Return a call's data, or throw a `ProblemError` for an error response.
 *
 * Example: `const task = unwrap(await client.POST("/api/v1/me/tasks", { body }));`
 */
export function unwrap<T>(result: {
  data?: T;
  error?: unknown;
  response: Response;
}): T {
  if (result.response.ok && result.data !== undefined) {
    return result.data;
  }
  const problem: Problem = isProblem(result.error)
    ? result.error
    : {
        type: "about:blank",
        title: result.response.statusText || "Error",
        status: result.response.status,
      };
  throw new ProblemError(problem, result.response);
}

/** Every task of the caller, page by page (`limit` per request), following `next_cursor`. */
export async function* allTasks(
  client: GroundworkClient,
  query: { status?: Task["status"]; limit?: number } = {},
): AsyncGenerator<Task[], void, undefined> {
  let cursor: string | undefined;
  do {
    const page = unwrap(
      await client.GET("/api/v1/me/tasks", {
        params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
      }),
    );
    yield page.items;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}
