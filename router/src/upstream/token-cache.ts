import type { AccessToken, TokenCredential } from "@azure/identity";

/**
 * Access tokens cached per scope and refreshed early (issue 3): a cached token is used while it has
 * more than `refreshMarginMs` left; after that one caller refreshes it while the others keep using the
 * still-valid token; concurrent misses share one fetch. A failed refresh keeps serving the old token
 * until it actually expires. The tokens are credentials: never log them.
 */
export class TokenCache {
  private readonly tokens = new Map<string, AccessToken>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly now: () => number = Date.now,
    private readonly refreshMarginMs = 5 * 60_000,
  ) {}

  /** A bearer token for `scope`. Throws the credential's error when no valid token can be had. */
  async get(scope: string): Promise<string> {
    const cached = this.tokens.get(scope);
    const now = this.now();
    if (cached && cached.expiresOnTimestamp - now > this.refreshMarginMs) return cached.token;
    if (cached && cached.expiresOnTimestamp > now) {
      this.refresh(scope).catch(() => undefined); // early refresh in the background
      return cached.token;
    }
    return (await this.refresh(scope)).token;
  }

  private refresh(scope: string): Promise<AccessToken> {
    let p = this.inflight.get(scope);
    if (!p) {
      p = this.credential
        .getToken(scope)
        .then(t => {
          if (!t) throw new Error(`no token for scope ${scope}`);
          this.tokens.set(scope, t);
          return t;
        })
        .finally(() => this.inflight.delete(scope));
      this.inflight.set(scope, p);
    }
    return p;
  }
}
