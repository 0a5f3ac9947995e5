import { AzureLogger, setLogLevel } from "@azure/logger";
import { LogLevel } from "@azure/msal-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  formatFailure,
  logCredentialEvent,
  msalLoggerCallback,
  redactToken,
} from "../../src/credential/logger.js";
import { summarizeFailure } from "../../src/credential/events.js";
import { AuthenticationError } from "../../src/errors/index.js";

function captureLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const original = AzureLogger.log;
  AzureLogger.log = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  };
  setLogLevel("verbose");
  return {
    lines,
    restore: () => {
      AzureLogger.log = original;
      setLogLevel(undefined);
    },
  };
}

describe("logging", () => {
  let restore = (): void => {};
  afterEach(() => restore());

  it("redacts tokens to 6 characters and a length", () => {
    const token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature";
    expect(redactToken(token)).toBe(`eyJ0eX…(${token.length} chars)`);
    expect(redactToken(token)).not.toContain("payload");
  });

  it("logs failures with the AADSTS code and correlation id", () => {
    const capture = captureLogs();
    restore = capture.restore;
    const error = new AuthenticationError(
      401,
      {
        error: "invalid_client",
        errorDescription: "AADSTS7000215",
        errorCodes: [7000215],
        correlationId: "corr-9",
      },
      { transient: false },
    );
    logCredentialEvent({
      type: "acquisition-failed",
      at: 0,
      tenantId: "contoso",
      scopes: ["https://storage.azure.com/.default"],
      enableCae: false,
      hasClaims: false,
      attempt: 0,
      durationMs: 12,
      failure: summarizeFailure(error, false),
      retryInMs: undefined,
    });
    expect(formatFailure(summarizeFailure(error, false))).toContain("AADSTS7000215");
    expect(capture.lines.join("\n")).toMatch(
      /acquisition failed tenant=contoso scopes=https:\/\/storage.azure.com\/.default attempt=0 transient=false .*AADSTS7000215.*correlationId=corr-9/,
    );
  });

  it("drops MSAL messages that hold PII", () => {
    const capture = captureLogs();
    restore = capture.restore;
    msalLoggerCallback(LogLevel.Info, "pii: someone@example.com", true);
    msalLoggerCallback(LogLevel.Verbose, "plain message", false);
    const all = capture.lines.join("\n");
    expect(all).not.toContain("someone@example.com");
    expect(all).toContain("plain message");
  });
});
