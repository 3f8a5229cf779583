/**
 * The msdi page: deblur a photo (with its degradation map as an overlay) or transfer the blur
 * of one image to another, watching the queue place and the tiles done, then compare before
 * and after and download the results.
 */
import { ApiError, health, runJob, type JobCallbacks } from './api.js';
import { Viewer } from './viewer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no #${id}`);
  return el as T;
};

type Mode = 'deblur' | 'reblur';

/** What the viewer shows for one tab. */
interface View {
  before: string;
  after: string;
  name: string;
  /** deblur only: the uploaded file (for the map) and its map, once made */
  file?: File;
  map?: string;
}

const els = {
  notice: $('notice'),
  drop: $('drop'),
  file: $<HTMLInputElement>('file'),
  sharp: $<HTMLInputElement>('sharp'),
  blurry: $<HTMLInputElement>('blurry'),
  level: $<HTMLInputElement>('level'),
  levelOut: $<HTMLOutputElement>('level-out'),
  runReblur: $<HTMLButtonElement>('run-reblur'),
  status: $('status'),
  bar: $<HTMLProgressElement>('bar'),
  statusText: $('status-text'),
  cancel: $<HTMLButtonElement>('cancel'),
  viewer: $('viewer'),
  toolbar: $('toolbar'),
  split: $<HTMLInputElement>('split'),
  zoom: $('zoom'),
  mapControls: $('map-controls'),
  mapToggle: $<HTMLInputElement>('map-toggle'),
  mapOpacity: $<HTMLInputElement>('map-opacity'),
  mapLayer: $('map-layer'),
  dlResult: $<HTMLAnchorElement>('dl-result'),
  dlMap: $<HTMLAnchorElement>('dl-map'),
  tagBefore: $('tag-before'),
  tagAfter: $('tag-after'),
};

const viewer = new Viewer(
  els.viewer, $<HTMLImageElement>('img-before'), $<HTMLImageElement>('img-after'), $<HTMLImageElement>('img-map'),
  $('after-layer'), $('handle'),
  ({ split, zoom }) => {
    els.split.value = String(Math.round(split * 1000) / 10);
    els.zoom.textContent = `${Math.round(zoom * 1000) / 10}%`;
  },
);

let mode: Mode = 'deblur';
const views: Partial<Record<Mode, View>> = {};
let running: AbortController | null = null;

// ------------------------------------------------------------------ status

function setStatus(text: string, o: { progress?: number | null; error?: boolean; busy?: boolean } = {}): void {
  els.status.hidden = false;
  els.status.classList.toggle('error', Boolean(o.error));
  els.statusText.textContent = text;
  els.cancel.hidden = !o.busy;
  els.bar.hidden = !o.busy;
  if (o.progress === null || o.progress === undefined) els.bar.removeAttribute('value');
  else els.bar.value = o.progress;
}

function callbacks(verb: string): JobCallbacks {
  return {
    onQueued: (ahead) => setStatus(ahead === 0 ? 'Starting…' : `Waiting in the queue: ${ahead} job${ahead === 1 ? '' : 's'} ahead`, { busy: true }),
    onRunning: () => setStatus(`${verb}…`, { busy: true }),
    onProgress: (done, total) => setStatus(`${verb}: tile ${done} of ${total}`, { progress: done / total, busy: true }),
  };
}

/** Runs one job at a time from this page; a new one cancels the previous one. */
async function job(path: string, body: BodyInit, verb: string, finished: string): Promise<Blob | null> {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const t0 = performance.now();
  setStatus('Uploading…', { busy: true });
  try {
    const blob = await runJob(path, body, callbacks(verb), controller.signal);
    setStatus(`${finished} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return blob;
  } catch (e) {
    if (controller.signal.aborted) {
      if (running === controller) setStatus('Cancelled');
      return null;
    }
    const status = e instanceof ApiError ? ` (${e.status})` : '';
    setStatus(`${e instanceof Error ? e.message : String(e)}${status}`, { error: true });
    return null;
  } finally {
    if (running === controller) running = null;
  }
}

els.cancel.addEventListener('click', () => running?.abort());

// ------------------------------------------------------------------ the viewer

const stem = (name: string): string => name.replace(/\.[^.]*$/, '') || 'image';

function loaded(img: HTMLImageElement, src: string): Promise<void> {
  return new Promise((resolve) => {
    img.onload = img.onerror = () => resolve();
    img.src = src;
  });
}

async function show(view: View | undefined): Promise<void> {
  els.viewer.hidden = els.toolbar.hidden = !view;
  if (!view) return;
  const [b, a] = [$<HTMLImageElement>('img-before'), $<HTMLImageElement>('img-after')];
  await Promise.all([loaded(b, view.before), loaded(a, view.after)]);
  els.tagBefore.textContent = mode === 'deblur' ? 'Blurry' : 'Sharp';
  els.tagAfter.textContent = mode === 'deblur' ? 'Deblurred' : 'Reblurred';
  els.dlResult.href = view.after;
  els.dlResult.download = view.name;
  els.mapControls.hidden = mode !== 'deblur';
  els.mapToggle.checked = false;
  showMap(view);
  viewer.fit();
}

function showMap(view: View): void {
  const on = els.mapToggle.checked && Boolean(view.map);
  els.mapLayer.hidden = !on;
  els.mapLayer.style.opacity = els.mapOpacity.value;
  els.dlMap.hidden = !view.map;
  if (view.map) {
    els.dlMap.href = view.map;
    els.dlMap.download = `${stem(view.name.replace(/-deblurred\.png$/, ''))}-degradation.png`;
  }
}

function replaceView(m: Mode, v: View): void {
  const old = views[m];
  if (old) for (const url of [old.before, old.after, old.map]) if (url) URL.revokeObjectURL(url);
  views[m] = v;
}

els.split.addEventListener('input', () => viewer.setSplit(Number(els.split.value) / 100));
$('fit').addEventListener('click', () => viewer.fit());
$('actual').addEventListener('click', () => viewer.actualSize());
els.mapOpacity.addEventListener('input', () => (els.mapLayer.style.opacity = els.mapOpacity.value));
// Toggling on, off and on again starts a second map job that aborts the first: only the
// latest request may touch the checkbox when it ends.
let mapRequest = 0;
els.mapToggle.addEventListener('change', async () => {
  const view = views.deblur;
  if (!view?.file) return;
  if (els.mapToggle.checked && !view.map) {
    const request = ++mapRequest;
    const blob = await job('api/degradation', view.file, 'Computing the degradation map', 'Degradation map');
    if (views.deblur !== view || request !== mapRequest) return;
    if (!blob) {
      els.mapToggle.checked = false;
      return;
    }
    view.map = URL.createObjectURL(blob);
    await loaded($<HTMLImageElement>('img-map'), view.map);
  } else if (view.map) {
    $<HTMLImageElement>('img-map').src = view.map;
  }
  showMap(view);
});

// ------------------------------------------------------------------ deblur

async function deblur(file: File): Promise<void> {
  const blob = await job('api/deblur', file, 'Deblurring', 'Deblurred');
  if (!blob) return;
  replaceView('deblur', { before: URL.createObjectURL(file), after: URL.createObjectURL(blob), name: `${stem(file.name)}-deblurred.png`, file });
  if (mode === 'deblur') await show(views.deblur);
}

els.file.addEventListener('change', () => {
  const f = els.file.files?.[0];
  if (f) void deblur(f);
  els.file.value = '';
});
for (const t of ['dragenter', 'dragover'] as const) {
  document.addEventListener(t, (e) => {
    e.preventDefault();
    if (mode === 'deblur') els.drop.classList.add('over');
  });
}
document.addEventListener('dragleave', (e) => {
  if (!e.relatedTarget) els.drop.classList.remove('over');
});
document.addEventListener('drop', (e) => {
  e.preventDefault();
  els.drop.classList.remove('over');
  const f = e.dataTransfer?.files[0];
  if (f && mode === 'deblur') void deblur(f);
});

// ------------------------------------------------------------------ blur transfer

function reblurReady(): void {
  els.runReblur.disabled = !(els.sharp.files?.length && els.blurry.files?.length);
}
els.sharp.addEventListener('change', reblurReady);
els.blurry.addEventListener('change', reblurReady);
els.level.addEventListener('input', () => (els.levelOut.value = Number(els.level.value).toFixed(1)));
els.runReblur.addEventListener('click', async () => {
  const sharp = els.sharp.files?.[0];
  const blurry = els.blurry.files?.[0];
  if (!sharp || !blurry) return;
  const level = els.level.value;
  const form = new FormData();
  form.append('sharp', sharp);
  form.append('blurry', blurry);
  form.append('level', level);
  const blob = await job('api/reblur', form, 'Transferring the blur', 'Blur transferred');
  if (!blob) return;
  replaceView('reblur', { before: URL.createObjectURL(sharp), after: URL.createObjectURL(blob), name: `${stem(sharp.name)}-reblurred-${level}.png` });
  if (mode === 'reblur') await show(views.reblur);
});

// ------------------------------------------------------------------ tabs and health

function setMode(m: Mode): void {
  mode = m;
  $('tab-deblur').setAttribute('aria-selected', String(m === 'deblur'));
  $('tab-reblur').setAttribute('aria-selected', String(m === 'reblur'));
  $('panel-deblur').hidden = m !== 'deblur';
  $('panel-reblur').hidden = m !== 'reblur';
  void show(views[m]);
}
$('tab-deblur').addEventListener('click', () => setMode('deblur'));
$('tab-reblur').addEventListener('click', () => setMode('reblur'));

health().then((h) => {
  const missing: string[] = [];
  if (!h.weights.deblur.present) missing.push(`deblurring and the degradation map need ${h.weights.deblur.file}`);
  if (!h.weights.joint.present) missing.push(`blur transfer needs ${h.weights.joint.file}`);
  if (missing.length) {
    els.notice.textContent = `Not available on this server yet: ${missing.join('; ')} (missing weights).`;
    els.notice.hidden = false;
  }
}, (e) => setStatus(`Cannot reach the server: ${e instanceof Error ? e.message : e}`, { error: true }));
