/** `rx-identity/testing`: tools for testing code that uses rx-identity. */
export {};
