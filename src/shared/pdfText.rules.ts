/**
 * Text for PDFs set in the standard fonts (Helvetica), which show Windows-1252
 * only: the invoice and the record of processing activities both use it.
 */

/** Characters the standard PDF fonts can show (WinAnsiEncoding): Latin-1 plus the Windows-1252 extras. */
const WIN_ANSI_EXTRAS = '€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ';

function isWinAnsi(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff) || WIN_ANSI_EXTRAS.includes(ch) || ch === '\n';
}

function isControl(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/** Latin letters that Unicode does not decompose into a base letter and an accent. */
const NO_DECOMPOSITION: Record<string, string> = { Ł: 'L', ł: 'l', Đ: 'D', đ: 'd', Ħ: 'H', ħ: 'h', ı: 'i', Ŧ: 'T', ŧ: 't' };

/** Text the standard fonts can show: accents dropped where a character is outside Latin-1, "?" where nothing is left. */
export function pdfSafeText(value: unknown): string {
  let out = '';
  for (const ch of String(value ?? '').replace(/\r\n?/g, '\n').replace(/\t/g, ' ')) {
    if (isWinAnsi(ch)) {
      out += ch;
      continue;
    }
    const base = (NO_DECOMPOSITION[ch] ?? ch).normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
    out += base !== '' && [...base].every(isWinAnsi) ? base : isControl(ch) ? '' : '?';
  }
  return out;
}
