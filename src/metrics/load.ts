/**
 * Image loading for the metrics: any format sharp decodes, as 8-bit sRGB, alpha removed,
 * 3 interleaved channels in R, G, B order (BasicSR/cv2 use B, G, R; see ssim.ts for why the
 * order does not change PSNR or either SSIM).
 */
import sharp, { type OutputInfo } from 'sharp';
import type { Image8 } from './image.js';

/**
 * Decodes `path` into an H x W x 3 RGB Image8 with Uint8 samples (0..255). Grey images are
 * expanded to 3 equal channels, alpha is dropped (not composited), 16-bit images are reduced
 * to 8 bits by sharp (v >> 8).
 */
export async function loadImage8(path: string): Promise<Image8> {
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await sharp(path)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`loadImage8: cannot decode image file ${path}: ${reason}`, { cause: err });
  }
  const { data, info } = result;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new Error(
      `loadImage8: expected 8-bit RGB (${info.width}x${info.height}x3 bytes) after conversion for ${path}, ` +
        `got ${info.channels} channels in ${data.length} bytes`,
    );
  }
  // copy out of the (possibly pooled) Buffer into a plain Uint8Array of exact size
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length).slice();
  return { width: info.width, height: info.height, channels: 3, data: pixels };
}
