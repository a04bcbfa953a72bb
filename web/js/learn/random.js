// A seeded random number generator (mulberry32), so that a shared link's "New wave", the sampled
// tasks of "Run Reptile" and the waves of the gradient measurement come out the same for everyone.
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A value drawn from U[low, high).
export const uniform = (random, low, high) => low + (high - low) * random();
