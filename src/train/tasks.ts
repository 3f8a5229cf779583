/**
 * The two training stages of the paper as "tasks": what the networks are, one optimisation
 * step on a batch, and how to restore an image for validation.
 *
 * Stage 1 (MSDI2E): deblur L1 x10; reblur judged by the conditional multiscale discriminator
 * (hinge GAN, feature matching x10, optional perceptual term); the discriminator sees
 * [sharp, reblurred] as fake and [sharp, blurry] as real.
 * Stage 2 (msdi2_net): the encoder and latent decoder from stage 1, frozen; PSNRLoss on both
 * outputs.
 *
 * Fine-tuning: given weights of the network a stage trains (MSDI2E for stage 1; msdi2_net, or
 * msdi_net for the ablation, for stage 2), a run starts from all of them instead of from scratch
 * (the discriminator and the optimiser state start fresh).
 */
import { Tensor, tidy, cat, stack, noGrad, Adam, clipGradNormTensor, manualSeed, withAutocast, ampDtype, type Device } from '../engine/index.js';
import type { Module } from '../nn/module.js';
import { MSDI2E } from '../models/msdi2e.js';
import { MsdiNet } from '../models/msdi-net.js';
import { MultiscaleDiscriminator } from '../models/discriminator.js';
import { scaleLatentInputs, zeroModulation } from '../models/spade.js';
import { l1Loss, gradientL1Loss, psnrLoss, hingeD, hingeG, featureMatching, type PerceptualLoss } from '../losses/index.js';
import { loadStateDict } from '../nn/state-dict.js';
import { buildModel, detectArch, isRepresentationKey, type ArchSpec } from '../models/registry.js';
import { loadWidened } from '../models/widen.js';
import type { RawTensor } from '../engine/io/index.js';
import type { TrainConfig, Ablation } from './config.js';

export interface Batch {
  blurry: Float32Array;
  sharp: Float32Array;
  n: number;
  size: number;
  /** stage 1 with levels: each sample's blur at `levels[k]` (see TrainConfig.levels) */
  levelBlurry?: Float32Array;
  levels?: Float32Array;
}

export interface Task {
  readonly g: Module;
  readonly d?: Module;
  readonly optG: Adam;
  readonly optD?: Adam;
  /** the loss reported as the run's main curve */
  readonly lossKey: string;
  /** where the networks, their optimiser state and the batches live ('cpu', 'cuda') */
  readonly device: Device;
  /**
   * Data-parallel training: called with each optimiser's parameters after backward and before
   * clipping and the update, to average their gradients across ranks (null: one process).
   */
  syncGrads: ((params: Tensor[]) => void) | null;
  setLr(lr: number, lrD: number): void;
  /**
   * One optimisation step; returns its losses and gradient norms, still on the device. check:
   * read them before each update and throw NonFiniteLossError, the weights untouched, if one is
   * not finite (on a GPU that waits for the step; the trainer reads them later instead, through
   * checkFinite).
   */
  step(batch: Batch, check?: boolean): StepStats;
  /** Throws NonFiniteLossError, naming it, for the first non-finite value of a step's stats. */
  checkFinite(values: Record<string, number>): void;
  /** N x 3 x H x W blurry (on `device`) -> restored, in eval mode. */
  restore(x: Tensor): Tensor;
  dispose(): void;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/**
 * A step's losses and gradient norms as one float32 vector on the task's device. Nothing in a
 * step reads it back: on a GPU the host goes on queueing work while the step runs, and reading it
 * (readStats) waits for the step.
 */
export interface StepStats {
  readonly keys: string[];
  readonly values: Tensor;
}

/** The numbers of a step's stats, by key (stats.values stays alive). */
export function readStats(stats: StepStats): Record<string, number> {
  const v = stats.values.toFloat32();
  return Object.fromEntries(stats.keys.map((k, i) => [k, v[i]!]));
}

/** readStats, then frees the stats. */
export function takeStats(stats: StepStats): Record<string, number> {
  try {
    return readStats(stats);
  } finally {
    stats.values.dispose();
  }
}

function statsOf(values: Record<string, Tensor>): StepStats {
  return { keys: Object.keys(values), values: stack(Object.values(values).map((t) => f32(t.detach()))) };
}

/** Joins the stats of a step's two updates (stage 1: generator, then discriminator). */
function joinStats(a: StepStats, b: StepStats): StepStats {
  return { keys: [...a.keys, ...b.keys], values: cat([a.values, b.values]) };
}

function batchTensors(b: Batch, device: Device): [Tensor, Tensor] {
  const shape = [b.n, 3, b.size, b.size];
  return [Tensor.fromArray(b.blurry, shape, { device }), Tensor.fromArray(b.sharp, shape, { device })];
}

/**
 * Throws for the first non-finite value: a loss, or a gradient norm (`norms`: its key -> whose
 * gradients). Checked before the update, it keeps the optimiser from turning every weight into NaN.
 */
function checkFiniteValues(values: Record<string, number>, norms: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) {
    if (Number.isFinite(v)) continue;
    throw new NonFiniteLossError(k in norms ? `the ${norms[k]} gradients' norm is ${v}` : `loss ${k} is ${v}`);
  }
}

/**
 * The total norm of the gradients of `params` (a 0-dim tensor), clipped to `clip` when it is > 0
 * (0: measured only, the gradients untouched).
 */
function gradNorm(params: Tensor[], clip: number): Tensor {
  return clipGradNormTensor(params, clip > 0 ? clip : Infinity);
}

/** Splits each feature of a D run on [fake; real] stacked along the batch. */
function splitPreds(preds: Tensor[][]): [Tensor[][], Tensor[][]] {
  const fake = preds.map((fs) => fs.map((f) => f32(f.chunk(2, 0)[0]!)));
  const real = preds.map((fs) => fs.map((f) => f32(f.chunk(2, 0)[1]!)));
  return [fake, real];
}

/** A network output as float32, for its loss (outputs under bf16 autocast are bfloat16). */
const f32 = (t: Tensor): Tensor => (t.dtype === 'float32' ? t : t.to({ dtype: 'float32' }));

/** Runs a forward pass in the run's precision (TrainConfig.amp). */
function forwardIn<T>(cfg: TrainConfig, device: Device, fn: () => T): T {
  return withAutocast(device, ampDtype(cfg.amp, 'config'), fn);
}

/**
 * Where a task's weights come from when not from a file at construction: 'from-rank-0' (rank 0
 * of a data-parallel run broadcasts them), 'from-checkpoint' (--resume loads them, the frozen
 * representation included, so stage 2 needs no --init then).
 */
export type WeightsLater = 'from-rank-0' | 'from-checkpoint';

/** Weights (or a checkpoint's network) that a run starts from, and where they came from. */
export interface InitWeights {
  tensors: Map<string, RawTensor>;
  source: string;
}

/** The architecture of `init`, for choosing what to load; a clear error for weights of no known network. */
function initArch(init: InitWeights): string {
  return detectArch(init.tensors, init.source).arch;
}

/**
 * Lays every 4-D weight of `net` out NHWC in place, so that oneDNN keeps the activations NHWC
 * from layer to layer instead of reordering them around every convolution.
 */
function setChannelsLast(net: Module): void {
  for (const [, t] of [...net.namedParameters(), ...net.namedBuffers()]) t.setChannelsLast_();
}

/** The pixel-space stand-in for the VGG perceptual term (see TrainConfig.perceptual). */
const PIXEL_L1: PerceptualLoss = { name: 'l1', compute: (pred, target) => l1Loss(pred, target), dispose: () => {} };

export class Stage1Task implements Task {
  readonly g: MSDI2E;
  readonly d?: MultiscaleDiscriminator;
  readonly optG: Adam;
  readonly optD?: Adam;
  readonly lossKey = 'l_pix';
  readonly device: Device;
  syncGrads: ((params: Tensor[]) => void) | null = null;

  readonly perceptual?: PerceptualLoss;

  /**
   * The networks are made on the CPU (the same initial weights on any device), then moved.
   * init: MSDI2E weights to fine-tune from (all of the generator; the discriminator starts fresh),
   * or 'from-rank-0' / 'from-checkpoint' when the weights arrive after construction (from rank 0
   * of a data-parallel run; from the checkpoint --resume continues).
   */
  constructor(readonly cfg: TrainConfig, ablation: Ablation, perceptual?: PerceptualLoss,
    o: { channelsLast?: boolean; device?: Device; init?: InitWeights | WeightsLater } = {}) {
    manualSeed(cfg.seed);
    this.device = o.device ?? 'cpu';
    this.perceptual = perceptual ?? (cfg.perceptual === 'l1' ? PIXEL_L1 : undefined);
    const reblur = ablation !== 'no-reblur';
    if (!reblur && cfg.encoderFrom === 'reblur') throw new Error('config: encoderFrom "reblur" needs the reblurring branch (not --ablate no-reblur)');
    this.g = new MSDI2E(cfg.wf, cfg.wf, reblur, cfg.spadeHidden).train();
    if (cfg.zeroModulation) zeroModulation(this.g);
    if (typeof o.init === 'object') {
      try {
        const arch = initArch(o.init);
        if (arch !== 'MSDI2E') throw new Error(`${o.init.source}: stage 1 fine-tunes MSDI2E weights, not ${arch}`);
        loadStateDict(this.g, o.init.tensors, { source: o.init.source }); // strict: same widths, same branches
      } catch (e) {
        this.g.dispose();
        throw e;
      }
    }
    if (o.channelsLast) setChannelsLast(this.g);
    this.g.to(this.device);
    this.optG = new Adam(this.g.trainableParameters(), { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps });
    if (reblur) {
      this.d = new MultiscaleDiscriminator(cfg.ndfD).train();
      if (o.channelsLast) setChannelsLast(this.d);
      this.d.to(this.device);
      this.optD = new Adam(this.d.trainableParameters(), { lr: cfg.lrD, betas: cfg.betas, eps: cfg.eps });
    }
  }

  setLr(lr: number, lrD: number): void {
    this.optG.lr = lr;
    if (this.optD) this.optD.lr = lrD;
  }

  checkFinite(values: Record<string, number>): void {
    checkFiniteValues(values, { grad_norm: 'generator', grad_norm_d: 'discriminator' });
  }

  step(batch: Batch, check = true): StepStats {
    const w = this.cfg.weights;
    return tidy(() => {
      const [blurry, sharp] = batchTensors(batch, this.device);
      this.optG.zeroGrad();
      const o = forwardIn(this.cfg, this.device, () => this.g.forward(blurry, this.d ? sharp : null, { encoderFromReblurOnly: this.cfg.encoderFrom === 'reblur' }));
      const deblurred = f32(o.deblurred);
      const reblurred = o.reblurred ? f32(o.reblurred) : null;
      const lPix = l1Loss(deblurred, sharp, w.pixel);
      let total = lPix;
      const values: Record<string, Tensor> = {};
      let fakeDetached: Tensor | null = null;
      if (this.d && reblurred) {
        const d = this.d;
        const [predFake, predReal] = splitPreds(forwardIn(this.cfg, this.device, () => d.forward(cat([cat([sharp, reblurred], 1), cat([sharp, blurry], 1)], 0))));
        const lGan = hingeG(predFake).mul(w.gan);
        const lFeat = featureMatching(predFake, predReal, w.feat);
        total = total.add(lGan).add(lFeat);
        values.l_gan = lGan;
        values.l_feat = lFeat;
        if (this.perceptual && w.perceptual > 0) {
          const lPer = this.perceptual.compute(reblurred, blurry).mul(w.perceptual);
          total = total.add(lPer);
          values.l_perceptual = lPer;
        }
        fakeDetached = reblurred.detach();
        if (this.cfg.levelWeight > 0 && batch.levelBlurry && batch.levels) {
          // The latent maps at each sample's level between the sharp image's (0) and the blurry
          // image's (1), as msdi reblur interpolates them; the reblurred image must be that blur.
          const target = Tensor.fromArray(batch.levelBlurry, blurry.shape, { device: this.device });
          const L = Tensor.fromArray(batch.levels, [batch.n, 1, 1, 1], { device: this.device });
          const out = f32(forwardIn(this.cfg, this.device, () => {
            const own = this.g.represent(sharp).latents;
            const latents = own.map((s, j) => s.add(o.latents[j]!.sub(s).mul(L)));
            return this.g.inverse_generator!.forward(sharp, latents);
          }));
          const lLevel = l1Loss(out, target, this.cfg.levelWeight);
          total = total.add(lLevel);
          values.l_level = lLevel;
          if (this.cfg.levelGradWeight > 0) {
            const lGrad = gradientL1Loss(out, target, this.cfg.levelGradWeight);
            total = total.add(lGrad);
            values.l_level_grad = lGrad;
          }
        }
      }
      values.l_pix = lPix;
      values.l_total = total;
      total.backward();
      this.syncGrads?.(this.optG.params);
      values.grad_norm = gradNorm(this.optG.params, this.cfg.clip);
      const stats = statsOf(values);
      if (check) this.checkFinite(readStats(stats));
      this.optG.step();
      if (this.d && this.optD && fakeDetached) {
        // The discriminator judges the reblurred image of this step (detached), not a second
        // generator forward as the official code does: one forward fewer per step on a CPU.
        this.optD.zeroGrad();
        const d = this.d;
        const fake = fakeDetached;
        const [predFake, predReal] = splitPreds(forwardIn(this.cfg, this.device, () => d.forward(cat([cat([sharp, fake], 1), cat([sharp, blurry], 1)], 0))));
        const lD = hingeD(predFake, false).add(hingeD(predReal, true));
        lD.backward();
        this.syncGrads?.(this.optD.params);
        const statsD = statsOf({ l_d: lD, grad_norm_d: gradNorm(this.optD.params, this.cfg.clip) });
        if (check) this.checkFinite(readStats(statsD));
        this.optD.step();
        return joinStats(stats, statsD);
      }
      return stats;
    });
  }

  restore(x: Tensor): Tensor {
    this.g.eval();
    try {
      return noGrad(() => this.g.forward(x, null).deblurred);
    } finally {
      this.g.train();
    }
  }

  dispose(): void {
    this.optG.dispose();
    this.optD?.dispose();
    this.g.dispose();
    this.d?.dispose();
  }
}

export class Stage2Task implements Task {
  readonly g: MsdiNet;
  readonly optG: Adam;
  readonly lossKey = 'l_psnr';
  readonly device: Device;
  syncGrads: ((params: Tensor[]) => void) | null = null;

  /**
   * init: a stage-1 (MSDI2E) state dict whose encoder and decoder are taken and frozen; or
   * weights of this very network (msdi2_net, msdi_net for the ablation) to fine-tune, all of
   * them (the representation stays frozen); or a WeightsLater when they arrive after
   * construction (from rank 0, or from the checkpoint of a resumed run).
   */
  constructor(readonly cfg: TrainConfig, ablation: Ablation, init?: InitWeights | WeightsLater,
    o: { channelsLast?: boolean; device?: Device } = {}) {
    manualSeed(cfg.seed);
    this.device = o.device ?? 'cpu';
    const degradation = ablation !== 'no-degradation';
    this.g = new MsdiNet({ wf: cfg.wf, version: 2, degradation, spadeHidden: cfg.spadeHidden }).train();
    if (cfg.zeroModulation) zeroModulation(this.g);
    this.g.setLatentScale(cfg.latentScale);
    if (o.channelsLast) setChannelsLast(this.g);
    try {
      if (typeof init === 'object') this.#initialise(init, degradation);
      else if (degradation && !init) throw new Error('stage 2 needs the stage-1 representation: pass --init <stage-1 checkpoint or MSDI2E weights>');
    } catch (e) {
      this.g.dispose();
      throw e;
    }
    this.g.to(this.device);
    this.optG = new Adam(this.g.trainableParameters(), { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps });
  }

  #initialise(init: InitWeights, degradation: boolean): void {
    // A file of the representation alone (scripts/gpu/representation.mts) counts as stage-1 weights.
    const representation = [...init.tensors.keys()].every(isRepresentationKey);
    const arch = representation ? 'MSDI2E' : initArch(init);
    if (arch === 'MSDI2E') {
      if (!degradation) throw new Error(`${init.source}: a stage-1 representation, which --ablate no-degradation does not use`);
      const rep = new Map([...init.tensors].filter(([k]) => isRepresentationKey(k)));
      // Non-strict: only the representation is loaded; shapes are still checked.
      loadStateDict(this.g, rep, { strict: false, source: init.source });
    } else if (arch === 'msdi2_net' || arch === 'msdi_net') {
      // Fine-tuning: every weight, strictly (the same width, SPADE width and representation);
      // narrower weights are widened to this run's wf first, the same function (models/widen.ts).
      const spec = detectArch(init.tensors, init.source);
      if (spec.wf < this.cfg.wf && spec.degradation === degradation) this.#widenFrom(init, spec);
      else loadStateDict(this.g, init.tensors, { source: init.source });
      // weights as exported compute with latentScale 1: the same function under this run's scale
      if (this.cfg.latentScale !== 1) scaleLatentInputs(this.g, 1 / this.cfg.latentScale);
    } else {
      throw new Error(`${init.source}: stage 2 starts from stage-1 (MSDI2E) or stage-2 (msdi2_net) weights, not ${arch}`);
    }
  }

  #widenFrom(init: InitWeights, spec: ArchSpec): void {
    const narrow = buildModel(spec);
    try {
      loadStateDict(narrow, init.tensors, { source: init.source });
      loadWidened(this.g, narrow);
    } catch (e) {
      throw new Error(`${init.source}: wf ${spec.wf} to ${this.cfg.wf}: ${(e as Error).message}`);
    } finally {
      narrow.dispose();
    }
  }

  setLr(lr: number): void {
    this.optG.lr = lr;
  }

  checkFinite(values: Record<string, number>): void {
    checkFiniteValues(values, { grad_norm: 'network' });
  }

  step(batch: Batch, check = true): StepStats {
    return tidy(() => {
      const [blurry, sharp] = batchTensors(batch, this.device);
      this.optG.zeroGrad();
      const o = forwardIn(this.cfg, this.device, () => this.g.forward(blurry));
      const loss = psnrLoss(f32(o.out1), sharp, this.cfg.psnrWeight).add(psnrLoss(f32(o.out2), sharp, this.cfg.psnrWeight));
      loss.backward();
      this.syncGrads?.(this.optG.params);
      const stats = statsOf({ l_psnr: loss, grad_norm: gradNorm(this.optG.params, this.cfg.clip) });
      if (check) this.checkFinite(readStats(stats));
      this.optG.step();
      return stats;
    });
  }

  restore(x: Tensor): Tensor {
    this.g.eval();
    try {
      return noGrad(() => this.g.forward(x).out2);
    } finally {
      this.g.train();
    }
  }

  dispose(): void {
    this.optG.dispose();
    this.g.dispose();
  }
}
