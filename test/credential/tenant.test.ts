import { describe, expect, it } from "vitest";
import { resolveTenant } from "../../src/credential/tenant.js";
import { isCredentialUnavailableError, isInvalidArgumentError } from "../../src/errors/index.js";

const none: NodeJS.ProcessEnv = {};

describe("resolveTenant", () => {
  it("uses the default tenant when none is requested", () => {
    expect(resolveTenant("tenant-a", undefined, [], none)).toBe("tenant-a");
  });

  it("allows the default tenant, in any case", () => {
    expect(resolveTenant("tenant-a", "TENANT-A", [], none)).toBe("tenant-a");
  });

  it("allows a listed tenant and refuses others, naming additionallyAllowedTenants", () => {
    expect(resolveTenant("tenant-a", "tenant-b", ["tenant-b"], none)).toBe("tenant-b");
    let error: unknown;
    try {
      resolveTenant("tenant-a", "tenant-c", ["tenant-b"], none);
    } catch (caught) {
      error = caught;
    }
    expect(isCredentialUnavailableError(error)).toBe(true);
    expect((error as Error).message).toContain("additionallyAllowedTenants");
    expect((error as Error).message).toContain("tenant-c");
  });

  it('allows any tenant with "*"', () => {
    expect(resolveTenant("tenant-a", "tenant-z", ["*"], none)).toBe("tenant-z");
  });

  it("uses the default tenant for every request when AZURE_IDENTITY_DISABLE_MULTITENANTAUTH is set", () => {
    const env = { AZURE_IDENTITY_DISABLE_MULTITENANTAUTH: "true" };
    expect(resolveTenant("tenant-a", "tenant-z", [], env)).toBe("tenant-a");
  });

  it("rejects a malformed per-request tenant before anything else", () => {
    expect(() => resolveTenant("tenant-a", "../x", ["*"], none)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }),
    );
    let error: unknown;
    try {
      resolveTenant("tenant-a", "evil.com/", ["*"], none);
    } catch (caught) {
      error = caught;
    }
    expect(isInvalidArgumentError(error)).toBe(true);
  });
});
