/**
 * Module: a node in a tree of layers with named parameters and buffers, nested exactly like
 * torch.nn so that state_dict keys are the official ones (`ad1_list.0.norm_0.mlp_shared.2.weight`).
 *
 * A module owns its parameters and buffers (they are `keep()`-ed out of any tidy scope) and
 * frees them in `dispose()`. Children are registered under their official attribute name;
 * Sequential and ModuleList use indices, gaps included (`mlp_shared.0/2/4`).
 */
import { Tensor, keep, type Device } from '../engine/index.js';

/** Whether `t` is on `device` ('cuda' names the current GPU, which libtorch reports as cuda:0). */
const isOn = (t: Tensor, device: Device): boolean => t.device === device || (device === 'cuda' && t.device === 'cuda:0');

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable parameter (requires_grad on); null declares an absent one (bias=False). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t).requiresGrad_(true);
    this.#params.set(name, t);
    return t;
  }

  /** Registers a buffer: state that is saved and loaded but not trained. */
  protected buffer(name: string, t: Tensor): Tensor {
    keep(t);
    this.#buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Own parameter by name (for subclasses that index them). */
  protected getParam(name: string): Tensor {
    const t = this.#params.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter "${name}"`);
    return t;
  }

  get childModules(): ReadonlyMap<string, Module> {
    return this.#children;
  }

  /** Every submodule with its dotted path, this one first (path ''). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this.#children) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.#params) if (t) out.push([path ? `${path}.${n}` : n, t]);
    }
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.#buffers) out.push([path ? `${path}.${n}` : n, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that currently require gradients (frozen ones excluded). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Parameters and buffers under their official keys, in registration order. */
  stateDict(): Map<string, Tensor> {
    const m = new Map<string, Tensor>();
    // torch orders a module's own params, then buffers, then children; key sets are what matter.
    for (const [path, mod] of this.namedModules()) {
      for (const [n, t] of mod.#params) if (t) m.set(path ? `${path}.${n}` : n, t);
      for (const [n, t] of mod.#buffers) m.set(path ? `${path}.${n}` : n, t);
    }
    return m;
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) {
      m.training = on;
      m.onModeChange();
    }
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Hook for layers that cache derived weights (spectral norm folding). */
  protected onModeChange(): void {}

  /**
   * Moves every parameter and buffer to `device` in place (the tensors keep their identity,
   * so optimisers made before still hold them; make them after, as their state lives there too).
   */
  to(device: Device): this {
    for (const [, m] of this.namedModules()) {
      const own = [...m.#params.values(), ...m.#buffers.values()].filter((t): t is Tensor => t !== null && !isOn(t, device));
      if (!own.length) continue;
      for (const t of own) t.moveTo_(device);
      m.onDeviceChange();
    }
    return this;
  }

  /** The device of the first parameter ('cpu' for a module without any). */
  get device(): Device {
    return this.parameters()[0]?.device ?? 'cpu';
  }

  /** Hook for layers that cache tensors derived from their weights (they must drop them). */
  protected onDeviceChange(): void {}

  /** Stops gradients for every parameter below this module. */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad_(false);
    return this;
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m.#params.values()) t?.dispose();
      for (const t of m.#buffers.values()) t.dispose();
      m.onDispose();
    }
  }

  protected onDispose(): void {}
}

/** A module with a single-input forward, usable inside Sequential. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
}

/** torch.nn.Sequential: children named 0, 1, 2, ... applied in order. */
export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.child(String(i), l));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
}

/** torch.nn.ModuleList: children named 0, 1, 2, ... */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new Error(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }
}
