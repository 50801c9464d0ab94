import { csrfField, html, table } from '../../console/html';
import type { CustomerConsoleService } from '../customerConsole.service';
import { cookieHeader } from '../session';
import { back, type CustomerPageKit } from './kit';

/** "Where you are signed in": the user's recent sign-ins and open sessions (device and coarse address only), and "sign out everywhere". */
export function securityPages({ get, post, send }: CustomerPageKit, service: CustomerConsoleService): void {
  get('/app/security', async (req, res, s) => {
    const w = await service.whereSignedIn(s);
    send(
      res,
      s,
      req,
      'Where you are signed in',
      html`${table(
        ['Signed in', 'Device', 'Address', 'Expires', ''],
        w.sessions.map((x) => [html`${x.since}`, html`${x.device}`, html`${x.address}`, html`${x.expires}`, x.current ? html`<strong>this browser</strong>` : html``]),
        'Open sessions',
      )}
<form method="post" action="/app/security/sign-out-everywhere">${csrfField(s.csrf)}
<p>Signing out everywhere ends every session above, this one included. If you did not recognise a sign-in, also ask your account's owner to change your password.</p>
<div><button type="submit">Sign out everywhere</button></div></form>
${table(
  ['When', 'Device', 'Address'],
  w.logins.map((l) => [html`${l.at}`, html`${l.device}`, html`${l.address}`]),
  'Recent sign-ins (last 20)',
)}
<p class="muted">Addresses are shown coarsely (the last part hidden); the device is read from the browser's User-Agent. We look nothing up with any other service.</p>`,
      '/app/security',
    );
  });

  post('/app/security/sign-out-everywhere', async (_req, res, s) => {
    await service.signOutEverywhere(s);
    res.setHeader('set-cookie', cookieHeader('', 0));
    back(res, '/app/login', 'signed_out_everywhere');
  });
}
