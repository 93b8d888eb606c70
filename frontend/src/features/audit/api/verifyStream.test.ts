import { describe, expect, it } from 'vitest';
import { ndjsonSplitter } from './verifyStream';

describe('the streamed verify', () => {
  it('parses lines split anywhere across chunks', () => {
    const split = ndjsonSplitter();
    expect(split('{"type":"progress","phase":"chains","do')).toEqual([]);
    expect(split('ne":5,"total":9}\n{"type":"progress",')).toEqual([
      { type: 'progress', phase: 'chains', done: 5, total: 9 },
    ]);
    expect(
      split('"phase":"stream","done":0,"total":1}\n\n{"type":"result","report":{}}', true),
    ).toEqual([
      { type: 'progress', phase: 'stream', done: 0, total: 1 },
      { type: 'result', report: {} },
    ]);
  });
});
