/**
 * Server-rendered HTML with escaping by default: every interpolated value is
 * escaped unless it is already Html (another template, or raw() for markup we
 * wrote ourselves).
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]!);

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escape(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

export const raw = (s: string) => new Html(s);

export interface NavItem {
  href: string;
  label: string;
}

/** brand and signOut default to the staff console's; the customer console (src/customerConsole) passes its own. */
export function page(opts: { title: string; role: string | null; actor?: string; csrf?: string; nav: NavItem[]; current?: string; flash?: { kind: 'ok' | 'error'; text: string } | null; brand?: string; signOut?: string; banners?: Html[] }, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowScriptTags": false}'>
<title>${opts.title} · ${opts.brand ?? 'MixRoute console'}</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/htmx.min.js" defer></script>
<script src="/console/assets/console.js" defer></script>
</head>
<body${opts.csrf ? raw(` hx-headers='${escape(JSON.stringify({ 'x-csrf-token': opts.csrf }))}'`) : ''}>
<a class="skip" href="#main">Skip to content</a>
<header>
  <strong>${opts.brand ?? 'MixRoute console'}</strong>
  ${opts.role
    ? html`<nav aria-label="Main"><ul>${opts.nav.map((n) => html`<li><a href="${n.href}"${n.href === opts.current ? raw(' aria-current="page"') : ''}>${n.label}</a></li>`)}</ul></nav>
  <form method="post" action="${opts.signOut ?? '/console/logout'}" class="signout"><input type="hidden" name="_csrf" value="${opts.csrf ?? ''}"><span>${opts.actor} (${opts.role})</span> <button type="submit">Sign out</button></form>`
    : ''}
</header>
${opts.banners?.length ? html`<aside class="banners" aria-label="Notices">${opts.banners}</aside>` : ''}
<main id="main">
${opts.flash ? html`<p class="flash ${opts.flash.kind}" role="${opts.flash.kind === 'error' ? 'alert' : 'status'}">${opts.flash.text}</p>` : ''}
<h1>${opts.title}</h1>
${body}
</main>
</body>
</html>`;
}

// A wide table scrolls inside its own box on a narrow screen, not the page; the box takes focus so a keyboard can scroll it.
export function table(headers: string[], rows: Html[][], caption: string): Html {
  return html`<div class="table-scroll" role="region" tabindex="0" aria-label="${caption}"><table><caption>${caption}</caption><thead><tr>${headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${
    rows.length ? rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`) : html`<tr><td colspan="${headers.length}">None.</td></tr>`
  }</tbody></table></div>`;
}

export const csrfField = (csrf: string) => html`<input type="hidden" name="_csrf" value="${csrf}">`;
