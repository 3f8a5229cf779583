/**
 * Uploads: the request body read into memory up to a size limit (413 past it), either raw
 * image bytes or multipart/form-data parts, and each image checked from its header (415 when
 * it is not an image, 413 above the pixel limit) before any work is queued.
 *
 * Images stay in memory buffers; file names sent by the client are parsed past and dropped,
 * so nothing a client sends ever names a file on this machine.
 */
import type { IncomingMessage } from 'node:http';
import { ImageFileError, probeImageBuffer, type ImageHeader } from '../data/image-file.js';
import { HttpError } from './http.js';

export interface UploadLimits {
  /** Largest request body in bytes. */
  maxBytes: number;
  /** Largest image, in pixels (width x height from the header). */
  maxPixels: number;
}

/** Most parts accepted in one multipart body. */
const MAX_PARTS = 16;
/** Longest text field value (a level, an overlay). */
const MAX_TEXT = 1024;

const mb = (n: number): string => `${Number((n / 2 ** 20).toFixed(1))} MB`;

/** The declared body size, or null when the client streams without Content-Length. */
export function declaredLength(req: IncomingMessage): number | null {
  const v = req.headers['content-length'];
  if (v === undefined) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export function tooLarge(maxBytes: number, got?: number): HttpError {
  return new HttpError(413, `upload is ${got === undefined ? 'larger than' : mb(got) + ', above'} the limit of ${mb(maxBytes)} (--max-upload-mb)`);
}

/**
 * The whole body, at most `maxBytes`. Past the limit the rest of the body is read and thrown
 * away (so that the client, still sending, gets to read the 413) up to 4 times the limit, after
 * which the connection is closed.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = declaredLength(req);
  return new Promise((resolve, reject) => {
    if (declared !== null && declared > maxBytes) {
      discard(req, maxBytes);
      return reject(tooLarge(maxBytes, declared));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        discard(req, maxBytes, size);
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => resolve(Buffer.concat(chunks, size));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new HttpError(400, 'the client closed the connection during the upload'));
    });
  });
}

function discard(req: IncomingMessage, maxBytes: number, already = 0): void {
  let seen = already;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > 4 * maxBytes) req.socket.destroy();
  });
  req.resume();
}

export interface Part {
  name: string;
  data: Buffer;
  /** The part came with a filename (a file input); the name itself is not kept. */
  isFile: boolean;
}

/** The boundary of a multipart/form-data content type, or null for any other type. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (!b || b.length > 200) throw new HttpError(400, 'multipart/form-data without a valid boundary');
  return b;
}

/** Splits a multipart/form-data body held in memory into its parts. */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw new HttpError(400, 'multipart body without its boundary');
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // "--": the closing delimiter
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new HttpError(400, 'multipart part without a header end');
    const headers = body.subarray(pos, headerEnd).toString('latin1');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headerEnd + 4);
    if (next < 0) throw new HttpError(400, 'multipart body is truncated (no closing boundary)');
    const disposition = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(headers);
    if (!disposition) throw new HttpError(400, 'multipart part without Content-Disposition: form-data');
    const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition[1])?.[1];
    if (name === undefined) throw new HttpError(400, 'multipart part without a name');
    parts.push({ name, data: body.subarray(headerEnd + 4, next), isFile: /(?:^|;)\s*filename\*?=/i.test(disposition[1]) });
    if (parts.length > MAX_PARTS) throw new HttpError(400, `multipart body with more than ${MAX_PARTS} parts`);
    pos = next + 2;
  }
  return parts;
}

export interface Upload {
  /** Image bytes by field name; a raw (non-multipart) body is the field `image`. */
  images: Map<string, Buffer>;
  /** Text fields. */
  fields: Map<string, string>;
}

/** Reads and splits the body; multipart file parts and the named image fields are images. */
export async function readUpload(req: IncomingMessage, limits: UploadLimits, imageFields: string[]): Promise<Upload> {
  const boundary = multipartBoundary(req.headers['content-type']);
  const body = await readBody(req, limits.maxBytes);
  const images = new Map<string, Buffer>();
  const fields = new Map<string, string>();
  if (boundary === null) {
    images.set('image', body);
    return { images, fields };
  }
  for (const p of parseMultipart(body, boundary)) {
    if (p.isFile || imageFields.includes(p.name)) {
      if (images.has(p.name)) throw new HttpError(400, `multipart field "${p.name}" is given twice`);
      images.set(p.name, p.data);
    } else {
      if (p.data.length > MAX_TEXT) throw new HttpError(400, `multipart field "${p.name}" is too long for a text field`);
      fields.set(p.name, p.data.toString('utf8'));
    }
  }
  return { images, fields };
}

/** The image of field `name`: with a single expected image, any single file part will do. */
export function imageField(up: Upload, name: string, expected: string[]): Buffer {
  const direct = up.images.get(name);
  if (direct) return direct;
  if (expected.length === 1 && up.images.size === 1) return [...up.images.values()][0];
  throw new HttpError(400, `missing the image field "${name}" (expected multipart fields ${expected.map((e) => `"${e}"`).join(', ')}, or the image as the raw body)`);
}

/** The status for an image that cannot be read: 413 above the pixel limit, 415 otherwise. */
export function imageStatus(e: unknown): HttpError {
  if (e instanceof ImageFileError) return new HttpError(e.problem === 'too-many-pixels' ? 413 : 415, e.message);
  return new HttpError(415, `${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
}

/** Reads the header of an uploaded image: 415 when it is not an image, 413 above the pixel limit. */
export async function checkImage(buf: Buffer, label: string, maxPixels: number): Promise<ImageHeader> {
  try {
    return await probeImageBuffer(buf, { label, maxPixels });
  } catch (e) {
    throw imageStatus(e);
  }
}
