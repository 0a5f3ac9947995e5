import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { main } from "../../examples/websocket-rotation/index.js";
import {
  CLOSE_TOKEN_EXPIRED,
  startTokenCheckingServer,
} from "../../examples/websocket-rotation/server.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

// Real time: the server checks `exp` against the wall clock. Lifetimes are a few seconds and
// nothing below asserts on timing, only on what happened.
describe("examples/websocket-rotation", () => {
  let emulator: EntraEmulator;
  beforeAll(async () => {
    emulator = await startEntraEmulator();
  });
  afterAll(() => emulator.stop());

  it("keeps one connection through more than three token lifetimes: no message lost, no close for expiry", async () => {
    const lines: string[] = [];

    const result = await main({
      lifetimeSeconds: 3,
      refreshInSeconds: 1,
      durationMs: 10_000,
      log: (line) => lines.push(line),
    });

    expect(result.messagesSent).toBeGreaterThan(50);
    expect(result.messagesAcknowledged).toBe(result.messagesSent);
    expect(result.server.closedForExpiry).toBe(0);
    expect(result.server.closedForInvalidToken).toBe(0);
    expect(result.closeCodes).toEqual([]);
    expect(result.server.connections).toBe(1);
    // More rotations than lifetimes elapsed: each token was replaced before it expired.
    expect(result.rotations).toBeGreaterThanOrEqual(3);
    expect(result.server.tokensRotated).toBe(result.rotations);
    expect(lines.join("\n")).not.toMatch(/eyJ[\w-]{20,}/);
  });

  it("the server's check is real: a client that never presents a new token is closed when its token expires", async () => {
    const server = await startTokenCheckingServer({
      jwks: emulator.jwks,
      audience: "https://storage.azure.com",
    });
    try {
      const token = emulator.mintToken({
        audience: "https://storage.azure.com",
        tenant: "t1",
        lifetimeSeconds: 2,
      });
      const socket = new WebSocket(server.url, { headers: { authorization: `Bearer ${token}` } });

      const code = await new Promise<number>((resolve) => socket.on("close", resolve));

      expect(code).toBe(CLOSE_TOKEN_EXPIRED);
      expect(server.stats.closedForExpiry).toBe(1);
    } finally {
      await server.close();
    }
  });

  it("the server refuses a token with the wrong audience or already expired at the handshake", async () => {
    const server = await startTokenCheckingServer({
      jwks: emulator.jwks,
      audience: "https://storage.azure.com",
    });
    try {
      const tokens = [
        emulator.mintToken({ audience: "https://graph.microsoft.com", tenant: "t1" }),
        emulator.mintToken({
          audience: "https://storage.azure.com",
          tenant: "t1",
          lifetimeSeconds: -60,
        }),
      ];

      const statuses = await Promise.all(
        tokens.map(
          (token) =>
            new Promise<number | undefined>((resolve) => {
              const socket = new WebSocket(server.url, {
                headers: { authorization: `Bearer ${token}` },
              });
              socket.on("unexpected-response", (_request, response) =>
                resolve(response.statusCode),
              );
              socket.on("open", () => resolve(101));
              socket.on("error", () => undefined);
            }),
        ),
      );

      expect(statuses).toEqual([401, 401]);
      expect(server.stats.rejectedHandshakes).toBe(2);
    } finally {
      await server.close();
    }
  });
});
