import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createClient } from "redis";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startRedis, type RunningRedis } from "../support/redis.js";

const CHILD = fileURLToPath(new URL("./fixtures/fleet-child.ts", import.meta.url));
const PROCESSES = 8;
const KEYS = 20;
const CYCLES = 3;

let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function runChild(prefix: string): Promise<{ acquired: number; tokens: string[] }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, redis.url, prefix, String(CYCLES), String(KEYS)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`fleet child exited with ${code}: ${out}`);
  return JSON.parse(out) as { acquired: number; tokens: string[] };
}

test("a fleet of 8 processes sharing 20 keys makes one acquisition per key per cycle", async () => {
  const prefix = "fleet";

  const results = await Promise.all(Array.from({ length: PROCESSES }, () => runChild(prefix)));

  const raw = createClient({ url: redis.url });
  await raw.connect();
  const counted = Number(await raw.get(`${prefix}:acquisitions`));
  raw.destroy();
  const total = results.reduce((sum, r) => sum + r.acquired, 0);
  expect(total).toBe(KEYS * CYCLES); // not PROCESSES × KEYS × CYCLES = 480
  expect(counted).toBe(KEYS * CYCLES);
  for (const { tokens } of results) {
    expect(tokens).toHaveLength(KEYS * CYCLES);
    // Every process got, for every cycle, a token of that cycle (or a newer one).
    tokens.forEach((token, i) => {
      expect(Number(token.split(":")[1])).toBeGreaterThanOrEqual(Math.floor(i / KEYS) + 1);
    });
  }
});
