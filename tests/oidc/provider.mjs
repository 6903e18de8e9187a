// A real OpenID provider for the single sign-on tests (npm package oidc-provider), on
// 127.0.0.1 only. Test-only: development interactions (a login form that accepts any
// e-mail as the account, then a consent form), dynamic client registration, short ID
// tokens. Environment: OIDC_PROVIDER_MODULE (path to the package's entry file),
// OIDC_PORT, OIDC_ID_TOKEN_TTL (seconds).
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    jwtUserinfo: { enabled: true }, // ProConnect answers userinfo as a signed JWT
  },
  // ProConnect's scopes and claims (https://github.com/numerique-gouv/proconnect-documentation).
  claims: {
    openid: ['sub'],
    email: ['email'],
    given_name: ['given_name'],
    usual_name: ['usual_name'],
  },
  // The login form's "login" field is the agent's e-mail address.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, given_name: 'Camille', usual_name: 'Martin' };
      },
    };
  },
  pkce: { required: () => true },
  ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL || 60) },
  cookies: { keys: ['test-only-cookie-signing-key'] },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready on ${issuer}`);
});
