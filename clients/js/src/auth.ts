import type { Transport } from "./http.js";

export interface User {
  id: string;
  email: string;
  created_at?: string;
  last_sign_in_at?: string | null;
  disabled?: boolean;
}

export interface Session {
  /** A JWT for `Authorization: Bearer …` (pass it as `accessToken` to `createClient`). */
  access_token: string;
  /** Single use: every refresh answers a new pair; keep only the newest. */
  refresh_token: string;
  token_type: "bearer";
  /** Seconds until the access token expires. */
  expires_in: number;
  user: User;
}

export interface Credentials {
  email: string;
  password: string;
}

/** `/v1/auth`: your app's end users (email and password). Stateless: it returns sessions, you keep them. */
export class AuthClient {
  constructor(private readonly transport: Transport) {}

  /** `POST /v1/auth/signup`: creates the user and signs them in. */
  signUp(credentials: Credentials): Promise<Session> {
    return this.transport.json<Session>({ method: "POST", path: "/v1/auth/signup", body: credentials, accessToken: null });
  }

  /** `POST /v1/auth/login` */
  signIn(credentials: Credentials): Promise<Session> {
    return this.transport.json<Session>({ method: "POST", path: "/v1/auth/login", body: credentials, accessToken: null });
  }

  /** `POST /v1/auth/refresh`: a new pair; the given refresh token is used up. */
  refresh(refreshToken: string): Promise<Session> {
    return this.transport.json<Session>({
      method: "POST",
      path: "/v1/auth/refresh",
      body: { refresh_token: refreshToken },
      accessToken: null,
    });
  }

  /**
   * `POST /v1/auth/logout`: ends the session of `refreshToken`, or without one the session of the
   * client's access token.
   */
  async signOut(refreshToken?: string): Promise<void> {
    if (refreshToken !== undefined) {
      await this.transport.json({ method: "POST", path: "/v1/auth/logout", body: { refresh_token: refreshToken } });
    } else {
      await this.transport.json({ method: "POST", path: "/v1/auth/logout" });
    }
  }

  /** `GET /v1/auth/me`: the user of `accessToken`, or of the client's access token. */
  async me(accessToken?: string): Promise<User> {
    const body = await this.transport.json<{ user: User }>({
      method: "GET",
      path: "/v1/auth/me",
      accessToken: accessToken ?? undefined,
    });
    return body.user;
  }
}
