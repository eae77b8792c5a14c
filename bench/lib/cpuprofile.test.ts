import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topFrames } from './cpuprofile.js';

test('topFrames ranks by self samples and merges identical frames', () => {
  const cf = (functionName: string, line: number) => ({
    functionName,
    url: 'file:///r/dist/src/a.js',
    lineNumber: line,
  });
  const frames = topFrames(
    {
      nodes: [
        { id: 1, callFrame: cf('(root)', 0) },
        { id: 2, callFrame: cf('send', 9) },
        { id: 3, callFrame: cf('send', 9) },
        { id: 4, callFrame: cf('', 20) },
      ],
      samples: [2, 3, 3, 4, 1, 2],
    },
    2,
  );
  assert.equal(frames[0]?.name, 'send');
  assert.equal(frames[0]?.where, 'dist/src/a.js:10');
  assert.ok(Math.abs(frames[0]!.selfPercent - 66.67) < 0.1);
  assert.equal(frames.length, 2);
});
