import { describe, expect, it } from 'vitest';
import { bytesOf, hexDump, textOf } from './payload';

describe('payload views', () => {
  it('decodes base64 to the exact bytes, binary included', () => {
    const bytes = bytesOf(btoa(String.fromCharCode(0, 255, 0x7b, 10)));
    expect(Array.from(bytes)).toEqual([0, 255, 0x7b, 10]);
  });

  it('shows UTF-8 text as text', () => {
    const utf8 = new TextEncoder().encode('héllo ✓');
    let bin = '';
    utf8.forEach((b) => (bin += String.fromCharCode(b)));
    expect(textOf(bytesOf(btoa(bin)))).toBe('héllo ✓');
  });

  it('dumps offsets, hex and printable ASCII, 16 bytes a line', () => {
    const bytes = new TextEncoder().encode('{"a":1}\n0123456789abcdef');
    expect(hexDump(bytes).split('\n')).toEqual([
      '00000000  7b 22 61 22 3a 31 7d 0a 30 31 32 33 34 35 36 37  |{"a":1}.01234567|',
      '00000010  38 39 61 62 63 64 65 66                          |89abcdef|',
    ]);
  });

  it('stops at the limit', () => {
    expect(hexDump(new Uint8Array(100), 32).split('\n')).toHaveLength(2);
  });
});

describe('editing payloads', () => {
  it('round-trips bytes through base64 and refuses what is not base64', async () => {
    const { base64Of, bytesOfBase64 } = await import('./payload');
    const bytes = new Uint8Array([0, 255, 0x7b, 10, 128]);
    expect(Array.from(bytesOfBase64(base64Of(bytes))!)).toEqual(Array.from(bytes));
    expect(bytesOfBase64('AP+A\n')).not.toBeNull();
    expect(bytesOfBase64('@@')).toBeNull();
    expect(bytesOfBase64('abc')).toBeNull();
  });

  it('hashes as the server does (SHA-256, lowercase hex)', async () => {
    const { sha256Hex, utf8 } = await import('./payload');
    expect(await sha256Hex(utf8('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
