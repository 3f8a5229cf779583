/** Image-restoration metrics as BasicSR / the official Learning_degradation code computes them. */
export { type Image8, toYChannel, cropView } from './image.js';
export { psnr, type PsnrOptions } from './psnr.js';
export { ssim3d, ssimPerChannel, gaussianKernel, type SsimOptions, type Ssim3dOptions } from './ssim.js';
export { loadImage8 } from './load.js';
