/**
 * Where the time goes: runs `fn` under libtorch's op profiler and returns each ATen op's self
 * time (its duration minus that of the ops it called), largest first. `trace` also keeps the
 * chrome://tracing file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from './native.js';

export interface OpTime {
  op: string;
  self_ms: number;
  calls: number;
}

interface TraceEvent { name: string; ph: string; ts: number; dur?: number }

export function profileOps(fn: () => void, trace?: string): OpTime[] {
  const dir = trace ? null : mkdtempSync(join(tmpdir(), 'msdi-profile-'));
  const file = trace ?? join(dir!, 'trace.json');
  try {
    native.profile(file);
    try {
      fn();
    } finally {
      native.profile(null);
    }
    // libtorch leaves a trailing comma before the closing bracket.
    const events = (JSON.parse(readFileSync(file, 'utf8').replace(/,\s*\]\s*$/, ']')) as TraceEvent[])
      .filter((e) => e.ph === 'X' && e.dur !== undefined)
      .sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
    const self = new Map<string, OpTime>();
    const stack: { e: TraceEvent; children: number }[] = [];
    const closeUntil = (ts: number) => {
      while (stack.length && stack[stack.length - 1].e.ts + stack[stack.length - 1].e.dur! <= ts) {
        const { e, children } = stack.pop()!;
        const t = self.get(e.name) ?? { op: e.name, self_ms: 0, calls: 0 };
        t.self_ms += (e.dur! - children) / 1000;
        t.calls++;
        self.set(e.name, t);
        if (stack.length) stack[stack.length - 1].children += e.dur!;
      }
    };
    for (const e of events) {
      closeUntil(e.ts);
      stack.push({ e, children: 0 });
    }
    closeUntil(Infinity);
    return [...self.values()].sort((a, b) => b.self_ms - a.self_ms);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
