// Draws the app's PNG icons (public/icons/) with nothing but node: a white chat bubble
// with three dots on the brand indigo. Run after changing the drawing and commit the
// PNGs: `node scripts/icons.mjs`. The build does not run it.
//
// - icon-192.png, icon-512.png: "any" purpose, a rounded square with transparent corners.
// - icon-maskable-512.png: full-bleed background, the bubble inside the central 80% circle
//   (the maskable safe zone), so any mask shape the platform applies keeps it whole.
// - apple-touch-icon.png (180): full-bleed, as iOS rounds the corners itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../public/icons');
const INDIGO = [0x4f, 0x46, 0xe5];
const WHITE = [0xff, 0xff, 0xff];

/** Signed distance (pixels; < 0 inside) to a rounded box centred at (cx, cy). */
function roundedBox(x, y, cx, cy, hw, hh, r) {
  const qx = Math.abs(x - cx) - hw + r;
  const qy = Math.abs(y - cy) - hh + r;
  const outside = Math.hypot(Math.max(qx, 0), Math.max(qy, 0));
  return outside + Math.min(Math.max(qx, qy), 0) - r;
}

const circle = (x, y, cx, cy, r) => Math.hypot(x - cx, y - cy) - r;

/** Signed distance to the triangle (a, b, c) (any winding). */
function triangle(x, y, a, b, c) {
  const edges = [
    [a, b],
    [b, c],
    [c, a],
  ];
  let d = Infinity;
  let sign = 0;
  for (const [p, q] of edges) {
    const ex = q[0] - p[0];
    const ey = q[1] - p[1];
    const wx = x - p[0];
    const wy = y - p[1];
    const t = Math.max(0, Math.min(1, (wx * ex + wy * ey) / (ex * ex + ey * ey)));
    d = Math.min(d, Math.hypot(wx - ex * t, wy - ey * t));
    sign += Math.sign(ex * wy - ey * wx);
  }
  return Math.abs(sign) === 3 ? -d : d;
}

/** Coverage of a shape from its signed distance (one-pixel antialiasing). */
const cover = (d) => Math.max(0, Math.min(1, 0.5 - d));

/**
 * One icon of `size` px. `fullBleed`: background over the whole square; else a rounded
 * square. `scale`: the bubble's size relative to the icon.
 */
function draw(size, { fullBleed, scale }) {
  const px = new Uint8Array(size * size * 4);
  const s = size;
  const c = s / 2;
  // The bubble: a rounded box a little above the centre, a tail at its lower left.
  const hw = 0.3 * s * scale;
  const hh = 0.22 * s * scale;
  const cy = c - 0.04 * s * scale;
  const tail = [
    [c - 0.2 * s * scale, cy + hh - 2],
    [c - 0.02 * s * scale, cy + hh - 2],
    [c - 0.24 * s * scale, cy + hh + 0.14 * s * scale],
  ];
  const dotR = 0.045 * s * scale;
  const dots = [-1, 0, 1].map((i) => c + i * 0.15 * s * scale);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const fx = x + 0.5;
      const fy = y + 0.5;
      const bg = fullBleed ? 1 : cover(roundedBox(fx, fy, c, c, c, c, 0.22 * s));
      const bubble = Math.max(
        cover(roundedBox(fx, fy, c, cy, hw, hh, 0.09 * s * scale)),
        cover(triangle(fx, fy, ...tail)),
      );
      const dot = Math.max(...dots.map((dx) => cover(circle(fx, fy, dx, cy, dotR))));
      // White bubble over indigo, indigo dots over the bubble.
      const white = bubble * (1 - dot);
      const i = (y * s + x) * 4;
      for (let k = 0; k < 3; k++) px[i + k] = Math.round(INDIGO[k] * (1 - white) + WHITE[k] * white);
      px[i + 3] = Math.round(255 * bg);
    }
  }
  return png(size, size, px);
}

// ---- a minimal PNG encoder (RGBA, 8 bits, no interlace) ------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function png(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const rows = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width * 4 + 1)] = 0; // filter: none
    Buffer.from(rgba.buffer, y * width * 4, width * 4).copy(rows, y * (width * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

mkdirSync(out, { recursive: true });
const icons = {
  'icon-192.png': draw(192, { fullBleed: false, scale: 1 }),
  'icon-512.png': draw(512, { fullBleed: false, scale: 1 }),
  // The safe zone is a circle of 40% radius: the bubble (about 0.3 × 0.36 of the icon
  // at scale 1) shrunk to 0.75 stays well inside it.
  'icon-maskable-512.png': draw(512, { fullBleed: true, scale: 0.75 }),
  'apple-touch-icon.png': draw(180, { fullBleed: true, scale: 0.9 }),
};
for (const [name, data] of Object.entries(icons)) {
  writeFileSync(join(out, name), data);
  console.log(`${name}: ${data.length} bytes`);
}
