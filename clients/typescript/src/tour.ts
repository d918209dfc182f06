/**
 * A short tour of the API through the typed client, run by tests/test_contract.py against the
 * production server: `node src/tour.ts` with GROUNDWORK_URL and GROUNDWORK_TOKEN (an access
 * token with the `tasks:read tasks:write` scopes) in the environment.
 *
 * It reads the caller's profile, creates tasks, pages through them with the cursor, changes
 * one with its ETag, is refused with 412 when it sends the stale ETag again, and prints what
 * it saw as one JSON line. Any surprise exits non-zero.
 */
import assert from "node:assert/strict";
import process from "node:process";

import { allTasks, createGroundworkClient, isProblem, type Task } from "./index.ts";

const TASKS = 5;
const PAGE_SIZE = 2;

function environment(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

const client = createGroundworkClient({
  baseUrl: environment("GROUNDWORK_URL"),
  token: environment("GROUNDWORK_TOKEN"),
});

const me = await client.GET("/api/v1/me");
assert.equal(me.response.status, 200, JSON.stringify(me.error));
assert.ok(me.data);

const created: Task[] = [];
for (let index = 1; index <= TASKS; index += 1) {
  const { data, response } = await client.POST("/api/v1/me/tasks", {
    body: { title: `Tour task ${index}`, status: "todo", due_date: "2026-12-31" },
  });
  assert.equal(response.status, 201);
  assert.ok(data);
  assert.equal(response.headers.get("Location"), `/api/v1/me/tasks/${data.id}`);
  created.push(data);
}

const pages: string[][] = [];
for await (const items of allTasks(client, { limit: PAGE_SIZE })) {
  pages.push(items.map((task) => task.id));
}

const first = created[0];
assert.ok(first);
const read = await client.GET("/api/v1/me/tasks/{task_id}", {
  params: { path: { task_id: first.id } },
});
const etag = read.response.headers.get("ETag");
assert.ok(etag);

const changed = await client.PATCH("/api/v1/me/tasks/{task_id}", {
  params: { path: { task_id: first.id }, header: { "If-Match": etag } },
  body: { status: "done" },
});
assert.equal(changed.response.status, 200);
assert.equal(changed.data?.status, "done");

const stale = await client.PATCH("/api/v1/me/tasks/{task_id}", {
  params: { path: { task_id: first.id }, header: { "If-Match": etag } },
  body: { title: "Lost update" },
});
assert.equal(stale.data, undefined);
assert.ok(isProblem(stale.error), `not a problem: ${JSON.stringify(stale.error)}`);

console.log(
  JSON.stringify({
    subject: me.data.subject,
    created: created.map((task) => task.id),
    pages,
    etag,
    changed: { status: changed.data?.status, etag: changed.response.headers.get("ETag") },
    stale: {
      status: stale.response.status,
      contentType: stale.response.headers.get("Content-Type"),
      problem: stale.error,
    },
  }),
);
