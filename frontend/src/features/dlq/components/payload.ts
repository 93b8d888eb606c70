// The payload's exact bytes (`payload_base64` of `GET /dlq/{id}`) as text or a hex dump.

export function bytesOf(base64: string): Uint8Array {
  const bin = atob(base64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** UTF-8 text, with U+FFFD where the bytes are not UTF-8. */
export const textOf = (bytes: Uint8Array) => new TextDecoder('utf-8').decode(bytes);

const hex2 = (b: number) => b.toString(16).padStart(2, '0');

/**
 * A classic hex dump: offset, 16 bytes in hex, and the printable ASCII of them
 * (`00000000  7b 22 61 22 ...  |{"a"...|`). At most `max` bytes; the caller says what was cut.
 */
export function hexDump(bytes: Uint8Array, max = 64 * 1024): string {
  const n = Math.min(bytes.length, max);
  const lines: string[] = [];
  for (let o = 0; o < n; o += 16) {
    const row = bytes.subarray(o, Math.min(o + 16, n));
    const hex = Array.from(row, hex2).join(' ').padEnd(47, ' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'));
    lines.push(`${o.toString(16).padStart(8, '0')}  ${hex}  |${ascii.join('')}|`);
  }
  return lines.join('\n');
}

/** A JSON payload's value, indented; other payloads as their text. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Standard base64 of bytes. */
export function base64Of(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** The bytes of standard base64, or null when it is not base64. */
export function bytesOfBase64(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) return null;
  try {
    return bytesOf(clean);
  } catch {
    return null;
  }
}

/** UTF-8 bytes of text. */
export const utf8 = (text: string) => new TextEncoder().encode(text);

/** Whether text is JSON. */
export function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * SHA-256 of bytes as lowercase hex, as the server records it; null where the browser offers
 * no WebCrypto (a page served over plain HTTP from another host than localhost).
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string | null> {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', bytes as BufferSource);
  return Array.from(new Uint8Array(digest), hex2).join('');
}
