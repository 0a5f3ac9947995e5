import type { GetTokenOptions } from "@azure/core-auth";
import { parseCommandArgs, UsageError } from "../support/args.js";
import type { Options } from "../support/args.js";
import type { Command } from "../support/context.js";
import { checkScopes, credentialFromEnvironment } from "../support/environment.js";

const help = `Usage: rx-identity token --scope SCOPE [options]

Prints an access token for the service principal in the AZURE_* environment variables.
By default only the token is printed (for $(rx-identity token ...)); --json prints an object
shaped like \`az account get-access-token\`.

Options:
  --scope SCOPE      the scope to request, e.g. https://storage.azure.com/.default (repeatable)
  --tenant TENANT    the tenant to authenticate in (default: AZURE_TENANT_ID)
  --claims JSON      extra claims to request, a JSON object (e.g. from a claims challenge)
  --cae              ask for a CAE-capable token (client capability cp1)
  --ca-file FILE     PEM file of extra CAs to trust, such as the emulator's (default: RX_IDENTITY_CA_FILE)
  --secret-file FILE read the client secret from FILE, following it as it is rotated
                     (default: AZURE_CLIENT_SECRET_FILE, else AZURE_CLIENT_SECRET)
  --json             print accessToken, expiresOn, expires_on, tenant and tokenType as JSON
  -h, --help         show this help

Environment:
  AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_SECRET_FILE (required),
  AZURE_AUTHORITY_HOST, AZURE_ADDITIONALLY_ALLOWED_TENANTS, RX_IDENTITY_CA_FILE,
  NODE_EXTRA_CA_CERTS (trusted for the whole process)

Example:
  rx-identity token --scope https://storage.azure.com/.default --json
`;

/** `az account get-access-token`'s `expiresOn`: local time, `YYYY-MM-DD HH:MM:SS.ffffff`. */
function azureCliTime(epochMs: number): string {
  const date = new Date(epochMs);
  const pad = (value: number, width = 2): string => String(value).padStart(width, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    `${pad(date.getMilliseconds(), 3)}000`
  );
}

const options = {
  scope: { type: "string", multiple: true },
  tenant: { type: "string" },
  claims: { type: "string" },
  cae: { type: "boolean" },
  "ca-file": { type: "string" },
  "secret-file": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/**
 * `rx-identity token`: one access token from the environment's credentials.
 *
 * @example
 * ```sh
 * rx-identity token --scope https://storage.azure.com/.default --json
 * ```
 */
export const tokenCommand: Command = {
  name: "token",
  summary: "print an access token for the AZURE_* credentials",
  help,
  synopsis:
    "rx-identity token --scope SCOPE... [--tenant TENANT] [--claims JSON] [--cae] [--ca-file FILE] [--secret-file FILE] [--json]",
  options,
  async run({ argv, env, stdout, signal }) {
    const { values } = parseCommandArgs("token", argv, options);
    if (values.help === true) {
      stdout.write(help);
      return 0;
    }
    if (values.scope === undefined || values.scope.length === 0) {
      throw new UsageError(
        "token: --scope is required (e.g. --scope https://storage.azure.com/.default)",
      );
    }
    const scopes = checkScopes(values.scope);
    if (values.claims !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(values.claims);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new UsageError(
          'token: --claims must be a JSON object, e.g. {"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}',
        );
      }
    }

    const credential = await credentialFromEnvironment(env, {
      tenantId: values.tenant,
      caFile: values["ca-file"],
      secretFile: values["secret-file"],
    });
    try {
      const getTokenOptions: GetTokenOptions = {
        abortSignal: signal,
        ...(values.claims === undefined ? {} : { claims: values.claims }),
        ...(values.cae === true ? { enableCae: true } : {}),
      };
      const token = await credential.getToken(scopes, getTokenOptions);
      if (values.json === true) {
        const tenant = values.tenant ?? env["AZURE_TENANT_ID"] ?? "";
        const output = {
          accessToken: token.token,
          expiresOn: azureCliTime(token.expiresOnTimestamp),
          expires_on: Math.floor(token.expiresOnTimestamp / 1_000),
          tenant,
          tokenType: token.tokenType ?? "Bearer",
        };
        stdout.write(`${JSON.stringify(output, null, 2)}\n`);
      } else {
        stdout.write(`${token.token}\n`);
      }
      return 0;
    } finally {
      await credential.close();
    }
  },
};
