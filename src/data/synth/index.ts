/**
 * msdi's synthetic blur: blurry/sharp pairs made the way GoPro was made (see pair.ts for the
 * pipeline), and whole folders of them.
 */
export type { RGBImage } from '../image-io.js';
export { isLevel, checkLevels, MOTION_CHANNELS, type SynthOptions, type SynthInfo, type SynthPair } from './options.js';
export { srgbToLinear, linearToSrgb, linearToSrgb8 } from './colour.js';
export { resampleToLinear, textureScore } from './resample.js';
export { variableDiscBlur } from './defocus.js';
export { synthesizePair } from './pair.js';
export { motionField } from './motion.js';
export {
  listPhotos, levelFolder, synthFolder,
  type SynthFolderOptions, type SynthFolderRecord, type SynthFolderResult,
} from './folder.js';
