// The site's icons, drawn at build time (no binary files in the repository): a torch, its flame
// amber with a pale core, on a dark tile. `any` icons are a rounded tile; the `maskable` one
// bleeds to its edges and keeps the torch inside the middle 80%, where every mask shape shows it.
// PNG is written by hand: RGBA scanlines, deflated with node's zlib, CRC-32 per chunk.

import { deflateSync } from "node:zlib";

const BACKGROUND = [0x17, 0x15, 0x0f];
const FLAME = [0xf5, 0x9e, 0x0b];
const CORE = [0xfd, 0xe6, 0x8a];
const HANDLE = [0x8a, 0x5a, 0x2b];
const SAMPLES = 4;

/** Inside a teardrop whose round end (radius r) is centred at (0, cy) and whose tip is at (0, tip). */
function inTeardrop(x, y, cy, r, tip) {
  if (x * x + (y - cy) * (y - cy) <= r * r) return true;
  if (y < tip || y > cy) return false;
  const t = (y - tip) / (cy - tip);
  // A flame leans: the tip curls a little to one side.
  const sway = 0.12 * r * Math.sin(Math.PI * (1 - t)) * (1 - t);
  return Math.abs(x - sway) <= r * Math.pow(t, 1.6);
}

/** The torch's colour at (x, y) in [-1, 1]², or null where it does not reach. */
function torch(x, y) {
  if (inTeardrop(x, y, 0.0, 0.2, -0.56) && y < 0.2) return CORE;
  if (inTeardrop(x, y, -0.06, 0.34, -0.85) && y < 0.28) return FLAME;
  // The handle: a tapering stick under the flame.
  if (y >= 0.3 && y <= 0.92) {
    const half = 0.16 - 0.07 * ((y - 0.3) / 0.62);
    if (Math.abs(x) <= half) return HANDLE;
  }
  // The cup that holds the flame.
  if (y >= 0.22 && y < 0.3 && Math.abs(x) <= 0.3 - (y - 0.22)) return HANDLE;
  return null;
}

/** Inside a rounded square covering [-1, 1]² with corner radius `radius`. */
function inTile(x, y, radius) {
  const dx = Math.max(Math.abs(x) - (1 - radius), 0);
  const dy = Math.max(Math.abs(y) - (1 - radius), 0);
  return dx * dx + dy * dy <= radius * radius;
}

/** RGBA pixels of one icon, `size` pixels square. */
function draw(size, maskable) {
  const pixels = Buffer.alloc(size * size * 4);
  // The torch fills 84% of an `any` tile, 76% of a maskable one (inside its safe circle).
  const scale = maskable ? 0.76 : 0.84;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let [r, g, b, a] = [0, 0, 0, 0];
      for (let sy = 0; sy < SAMPLES; sy++) {
        for (let sx = 0; sx < SAMPLES; sx++) {
          const x = ((px + (sx + 0.5) / SAMPLES) / size) * 2 - 1;
          const y = ((py + (sy + 0.5) / SAMPLES) / size) * 2 - 1;
          if (!maskable && !inTile(x, y, 0.44)) continue;
          const color = torch(x / scale, y / scale) ?? BACKGROUND;
          r += color[0];
          g += color[1];
          b += color[2];
          a += 255;
        }
      }
      const n = SAMPLES * SAMPLES;
      const covered = a / 255;
      const i = (py * size + px) * 4;
      pixels[i] = covered ? Math.round(r / covered) : 0;
      pixels[i + 1] = covered ? Math.round(g / covered) : 0;
      pixels[i + 2] = covered ? Math.round(b / covered) : 0;
      pixels[i + 3] = Math.round(a / n);
    }
  }
  return pixels;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG file of `size`×`size` RGBA `pixels`. */
function png(size, pixels) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bits per channel
  header[9] = 6; // RGBA
  // Each scanline starts with its filter type: 0, none.
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) pixels.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The icons the manifest names: file name → PNG bytes. */
export function icons() {
  return {
    "icon-192.png": png(192, draw(192, false)),
    "icon-512.png": png(512, draw(512, false)),
    "maskable-512.png": png(512, draw(512, true)),
  };
}
