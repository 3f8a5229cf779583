/**
 * Finished images of progress-streaming requests, kept in memory for a while under random ids
 * (GET /api/results/:id): dropped after `ttlMs`, and the oldest first when they would hold
 * more than `maxBytes` together.
 */
import { randomUUID } from 'node:crypto';

interface Entry {
  png: Buffer;
  name: string;
  expires: number;
}

export class ResultStore {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(readonly ttlMs: number, readonly maxBytes: number) {}

  put(png: Buffer, name: string): string {
    this.#sweep();
    while (this.#entries.size && this.#bytes + png.length > this.maxBytes) this.#drop(this.#entries.keys().next().value!);
    const id = randomUUID();
    this.#entries.set(id, { png, name, expires: Date.now() + this.ttlMs });
    this.#bytes += png.length;
    return id;
  }

  get(id: string): { png: Buffer; name: string } | undefined {
    this.#sweep();
    return this.#entries.get(id);
  }

  get size(): { count: number; bytes: number } {
    return { count: this.#entries.size, bytes: this.#bytes };
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, e] of this.#entries) if (e.expires <= now) this.#drop(id);
  }

  #drop(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#bytes -= e.png.length;
    this.#entries.delete(id);
  }
}
