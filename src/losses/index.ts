export { psnrLoss, l1Loss, gradientL1Loss } from './pixel.js';
export { hingeD, hingeG, featureMatching } from './gan.js';
export type { PerceptualLoss } from './gan.js';
