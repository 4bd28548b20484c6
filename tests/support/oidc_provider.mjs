// A real OpenID Provider for the company sign-in tests: the certified `oidc-provider` package (pinned in
// scripts/fetch-node-tools), configured with one confidential client, PKCE required, and test people whose
// ID tokens carry email and groups. Its development login and consent pages accept any password; the tests'
// browser stand-in fills them over HTTP. Usage: node oidc_provider.mjs PORT CONFIG_JSON
//   CONFIG_JSON = {"client_id", "client_secret", "redirect_uris": [...], "people": {login: {claims}}}
//   OIDC_PROVIDER_MAIN = the package's lib/index.js (it lives in .cache/node-tools, not beside this file)
// Prints "ready ISSUER" once listening on 127.0.0.1:PORT.
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MAIN).href);

const port = Number(process.argv[2]);
const settings = JSON.parse(process.argv[3]);
const issuer = `http://127.0.0.1:${port}`;
const people = settings.people;

const provider = new Provider(issuer, {
  clients: [{
    client_id: settings.client_id,
    client_secret: settings.client_secret,
    redirect_uris: settings.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  // Put the scopes' claims in the ID token itself (castproxy reads the ID token, not userinfo).
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person }) };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['castproxy-test-cookie-key'] },
  ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Interaction: 600, Grant: 3600 },
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
