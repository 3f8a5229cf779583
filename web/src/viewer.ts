/**
 * Before / after comparison at full resolution: both images (and the optional map overlay)
 * share one transform (pan, zoom about the cursor or the pinch centre); the "after" layer is
 * clipped at the split line, which the handle or the split slider moves.
 */

const MIN_ZOOM = 0.02;
const MAX_ZOOM = 32;

export class Viewer {
  #scale = 1;
  #x = 0;
  #y = 0;
  /** Split position as a fraction of the viewer's width. */
  #split = 0.5;
  readonly #pointers = new Map<number, { x: number; y: number }>();
  #drag: 'pan' | 'split' | null = null;
  #pinch: { dist: number; scale: number; cx: number; cy: number; x: number; y: number } | null = null;
  readonly #imgs: HTMLImageElement[];

  constructor(
    readonly root: HTMLElement,
    readonly before: HTMLImageElement,
    readonly after: HTMLImageElement,
    readonly map: HTMLImageElement,
    readonly afterLayer: HTMLElement,
    readonly handle: HTMLElement,
    readonly onChange: (v: { split: number; zoom: number }) => void,
  ) {
    this.#imgs = [before, after, map];
    root.addEventListener('wheel', (e) => this.#wheel(e), { passive: false });
    root.addEventListener('pointerdown', (e) => this.#down(e));
    root.addEventListener('pointermove', (e) => this.#move(e));
    for (const t of ['pointerup', 'pointercancel', 'pointerleave'] as const) root.addEventListener(t, (e) => this.#up(e));
    root.addEventListener('dblclick', () => (this.#scale < 1 ? this.actualSize() : this.fit()));
    new ResizeObserver(() => this.#apply()).observe(root);
  }

  get zoom(): number {
    return this.#scale;
  }

  get split(): number {
    return this.#split;
  }

  setSplit(fraction: number): void {
    this.#split = Math.min(1, Math.max(0, fraction));
    this.#apply();
  }

  /** Whole image in view. */
  fit(): void {
    const { width, height } = this.#size();
    const r = this.root.getBoundingClientRect();
    if (!width || !r.width) return;
    this.#scale = Math.min(r.width / width, r.height / height, 1);
    this.#x = (r.width - width * this.#scale) / 2;
    this.#y = (r.height - height * this.#scale) / 2;
    this.#apply();
  }

  /** One image pixel per screen pixel, about the centre of the view. */
  actualSize(): void {
    const r = this.root.getBoundingClientRect();
    this.#zoomAt(1 / this.#scale, r.width / 2, r.height / 2);
  }

  #size(): { width: number; height: number } {
    return { width: this.after.naturalWidth || this.before.naturalWidth, height: this.after.naturalHeight || this.before.naturalHeight };
  }

  #zoomAt(factor: number, cx: number, cy: number): void {
    const s = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.#scale * factor));
    this.#x = cx - ((cx - this.#x) * s) / this.#scale;
    this.#y = cy - ((cy - this.#y) * s) / this.#scale;
    this.#scale = s;
    this.#apply();
  }

  #local(e: { clientX: number; clientY: number }): { x: number; y: number } {
    const r = this.root.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  #wheel(e: WheelEvent): void {
    e.preventDefault();
    const p = this.#local(e);
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    this.#zoomAt(Math.exp(-delta * 0.0015), p.x, p.y);
  }

  #down(e: PointerEvent): void {
    this.root.setPointerCapture(e.pointerId);
    this.#pointers.set(e.pointerId, this.#local(e));
    if (this.#pointers.size === 2) {
      const [a, b] = [...this.#pointers.values()];
      this.#drag = null;
      this.#pinch = { dist: Math.hypot(a.x - b.x, a.y - b.y), scale: this.#scale, cx: (a.x + b.x) / 2, cy: (a.y + b.y) / 2, x: this.#x, y: this.#y };
    } else if (this.#pointers.size === 1) {
      this.#drag = e.target === this.handle || this.handle.contains(e.target as Node) ? 'split' : 'pan';
      this.root.classList.toggle('panning', this.#drag === 'pan');
      if (this.#drag === 'split') this.setSplit(this.#local(e).x / this.root.clientWidth);
    }
  }

  #move(e: PointerEvent): void {
    const prev = this.#pointers.get(e.pointerId);
    if (!prev) return;
    const p = this.#local(e);
    this.#pointers.set(e.pointerId, p);
    if (this.#pinch && this.#pointers.size === 2) {
      const [a, b] = [...this.#pointers.values()];
      const k = this.#pinch;
      const s = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, (k.scale * Math.hypot(a.x - b.x, a.y - b.y)) / Math.max(k.dist, 1)));
      const cx = (a.x + b.x) / 2;
      const cy = (a.y + b.y) / 2;
      // The image point under the first centre stays under the current centre.
      this.#x = cx - ((k.cx - k.x) * s) / k.scale;
      this.#y = cy - ((k.cy - k.y) * s) / k.scale;
      this.#scale = s;
      this.#apply();
    } else if (this.#drag === 'split') {
      this.setSplit(p.x / this.root.clientWidth);
    } else if (this.#drag === 'pan') {
      this.#x += p.x - prev.x;
      this.#y += p.y - prev.y;
      this.#apply();
    }
  }

  #up(e: PointerEvent): void {
    if (!this.#pointers.delete(e.pointerId)) return;
    if (this.#pointers.size < 2) this.#pinch = null;
    if (this.#pointers.size === 0) {
      this.#drag = null;
      this.root.classList.remove('panning');
    }
  }

  #apply(): void {
    const t = `translate(${this.#x}px, ${this.#y}px) scale(${this.#scale})`;
    for (const img of this.#imgs) img.style.transform = t;
    const w = this.root.clientWidth;
    const at = this.#split * w;
    this.afterLayer.style.clipPath = `inset(0 0 0 ${at}px)`;
    this.handle.style.left = `${at}px`;
    this.root.classList.toggle('pixels', this.#scale >= 2);
    this.onChange({ split: this.#split, zoom: this.#scale });
  }
}
