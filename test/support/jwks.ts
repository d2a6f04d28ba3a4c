import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function newSigningKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * A stand-in identity provider: its JSON Web Key Set over real HTTP on 127.0.0.1, with the
 * published keys changeable at any time (key rotation), and the fetches counted.
 */
export class FakeIdentityProvider {
  readonly issuer = 'https://idp.test/';
  private server: Server | null = null;
  private published: SigningKey[] = [];
  /** 200 with the key set, or this status (an outage). */
  status = 200;
  fetches = 0;
  /** Requests held unanswered by hold(), not yet released. */
  waiting = 0;
  private held: Promise<void> | null = null;

  /** From now on every request waits unanswered until the returned function is called (a provider that hangs). */
  hold(): () => void {
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = null;
      release();
    };
  }

  async start(keys: SigningKey[]): Promise<this> {
    this.published = keys;
    this.server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      this.fetches++;
      if (this.held) {
        this.waiting++;
        void this.held.then(() => {
          this.waiting--;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.published.map((k) => k.publicJwk) }));
        });
        return;
      }
      if (this.status !== 200) {
        res.writeHead(this.status).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.published.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get jwksUrl(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}/.well-known/jwks.json`;
  }

  publish(keys: SigningKey[]): void {
    this.published = keys;
  }

  /** A token signed by `key`: issuer this provider, `claims` added, valid `expiresIn` (default 1 h). */
  sign(key: SigningKey, claims: JWTPayload & { sub?: string }, options: { audience?: string; issuer?: string; expiresIn?: string | number } = {}): Promise<string> {
    let jwt = new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).setIssuedAt().setIssuer(options.issuer ?? this.issuer);
    if (options.audience) jwt = jwt.setAudience(options.audience);
    jwt = jwt.setExpirationTime(options.expiresIn ?? '1h');
    return jwt.sign(key.privateKey);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}
