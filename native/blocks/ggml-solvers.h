// The scale searches of src/blocks/ggml/solvers.ts, four independent problems per call (one per lane).
// Each function is its TypeScript namesake lane by lane; see ggml-lanes.h for the bit-exactness rule.
#ifndef MIXQ_GGML_SOLVERS_H
#define MIXQ_GGML_SOLVERS_H

#include "ggml-lanes.h"

/** The trial grid of make_qkx2/qkx3_quants (QkxSearch in solvers.ts). */
typedef struct {
  float rmin, rdelta;
  int nstep;
  int mad;
} Search;

static const Search QKX_IMATRIX = {-0.9f, 0.05f, 36, 0};

/**
 * makeQkxQuants: affine fit x ~ scale*l + min (min <= 0), levels [0, nmax], n <= 32 values per lane.
 * Levels (as floats) go to Lf, -min to *minOut; returns the scale.
 */
static V qkx4(int n, int nmax, const V *x, const V *w, V *Lf, V *minOut, const Search *s) {
  V Laux[32];
  V zero = fs(0);
  V mn = x[0], mx = x[0], sumW = w[0], sumX = fmul(w[0], x[0]);
  for (int i = 1; i < n; i++) {
    mn = wasm_f32x4_pmin(mn, x[i]); // if (x < min) min = x
    mx = wasm_f32x4_pmax(mx, x[i]); // if (x > max) max = x
    sumW = fadd(sumW, w[i]);
    sumX = fadd(sumX, fmul(w[i], x[i]));
  }
  mn = sel(zero, mn, wasm_f32x4_gt(mn, zero));
  V degenerate = wasm_f32x4_le(mx, mn);
  V mn0 = mn;
  V fnmax = fs((float)nmax);
  V iscale = fdiv(fnmax, fsub(mx, mn));
  V scale = fdiv(fs(1), iscale);
  V best = zero;
  for (int i = 0; i < n; i++) {
    V l = i2f(clampi(nearest4(fmul(iscale, fsub(x[i], mn))), 0, nmax));
    Lf[i] = l;
    V diff = fsub(fadd(fmul(scale, l), mn), x[i]);
    diff = s->mad ? fabs4(diff) : fmul(diff, diff);
    best = fadd(best, fmul(w[i], diff));
  }
  for (int is = 0; s->nstep >= 1 && is <= s->nstep; is++) {
    float f = s->rmin + s->rdelta * (float)is;
    f = f + (float)nmax;
    iscale = fdiv(fs(f), fsub(mx, mn));
    V sumL = zero, sumL2 = zero, sumXL = zero;
    for (int i = 0; i < n; i++) {
      V l = i2f(clampi(nearest4(fmul(iscale, fsub(x[i], mn))), 0, nmax));
      Laux[i] = l;
      V wl = fmul(w[i], l);
      sumL = fadd(sumL, wl);
      sumL2 = fadd(sumL2, fmul(wl, l));
      sumXL = fadd(sumXL, fmul(wl, x[i]));
    }
    V D = fsub(fmul(sumW, sumL2), fmul(sumL, sumL));
    V dpos = wasm_f32x4_gt(D, zero);
    if (!any(dpos)) continue;
    V thisScale = fdiv(fsub(fmul(sumW, sumXL), fmul(sumX, sumL)), D);
    V thisMin = fdiv(fsub(fmul(sumL2, sumX), fmul(sumL, sumXL)), D);
    V mpos = wasm_f32x4_gt(thisMin, zero);
    thisMin = sel(zero, thisMin, mpos);
    thisScale = sel(fdiv(sumXL, sumL2), thisScale, mpos);
    V cur = zero;
    for (int i = 0; i < n; i++) {
      V diff = fsub(fadd(fmul(thisScale, Laux[i]), thisMin), x[i]);
      diff = s->mad ? fabs4(diff) : fmul(diff, diff);
      cur = fadd(cur, fmul(w[i], diff));
    }
    V acc = wasm_v128_and(dpos, wasm_f32x4_lt(cur, best));
    if (!any(acc)) continue;
    for (int i = 0; i < n; i++) Lf[i] = sel(Laux[i], Lf[i], acc);
    best = sel(cur, best, acc);
    scale = sel(thisScale, scale, acc);
    mn = sel(thisMin, mn, acc);
  }
  // degenerate lanes (max <= min): levels 0, scale 0, -min of the range
  for (int i = 0; i < n; i++) Lf[i] = sel(zero, Lf[i], degenerate);
  *minOut = fneg(sel(mn0, mn, degenerate));
  return sel(zero, scale, degenerate);
}

/**
 * makeQxQuants with rmseType 1 (the only one ggml's encoders use here): symmetric levels
 * [-nmax, nmax-1] with weights qw (or x^2 when qw is 0), 18 trial scales. L gets level + nmax (int32).
 */
static V qx4(int n, int nmax, const V *x, const V *qw, V *L) {
  V w[32], Laux[32];
  V zero = fs(0);
  V max = max_by_magnitude4(x, n);
  V degenerate = wasm_f32x4_lt(fabs4(max), fs(GROUP_MAX_EPS));
  for (int i = 0; i < n; i++) w[i] = qw ? qw[i] : fmul(x[i], x[i]);
  V vnmax = is_(nmax);
  V iscale = fdiv(fs(-(float)nmax), max);
  V sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; i++) {
    V l = clampi(nearest4(fmul(iscale, x[i])), -nmax, nmax - 1);
    L[i] = wasm_i32x4_add(l, vnmax);
    V lf = i2f(l);
    sumlx = fadd(sumlx, fmul(fmul(w[i], x[i]), lf));
    suml2 = fadd(suml2, fmul(fmul(w[i], lf), lf));
  }
  V scale = sel(fdiv(sumlx, suml2), zero, wasm_f32x4_ne(suml2, zero));
  V best = fmul(scale, sumlx);
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    float t = (float)nmax + 0.1f * (float)is;
    iscale = fdiv(fs(-t), max);
    sumlx = zero;
    suml2 = zero;
    for (int i = 0; i < n; i++) {
      V l = clampi(nearest4(fmul(iscale, x[i])), -nmax, nmax - 1);
      Laux[i] = l;
      V lf = i2f(l);
      sumlx = fadd(sumlx, fmul(fmul(w[i], x[i]), lf));
      suml2 = fadd(suml2, fmul(fmul(w[i], lf), lf));
    }
    V acc = wasm_v128_and(wasm_f32x4_gt(suml2, zero),
                          wasm_f32x4_gt(fmul(sumlx, sumlx), fmul(best, suml2)));
    if (!any(acc)) continue;
    for (int i = 0; i < n; i++) L[i] = sel(wasm_i32x4_add(Laux[i], vnmax), L[i], acc);
    V sc = fdiv(sumlx, suml2);
    scale = sel(sc, scale, acc);
    best = sel(fmul(sc, sumlx), best, acc);
  }
  for (int i = 0; i < n; i++) L[i] = sel(is_(0), L[i], degenerate);
  return sel(zero, scale, degenerate);
}

/**
 * makeQ3Quants with doRmse: symmetric levels refined by coordinate descent (weights x^2), at most 5
 * passes. A lane that has converged keeps running passes: a pass that changes nothing leaves the state
 * as it was, so the next one changes nothing either. L gets level + nmax (int32).
 */
static V q3x4(int n, int nmax, const V *x, V *L) {
  V Lf[32];
  V zero = fs(0);
  V max = max_by_magnitude4(x, n);
  V degenerate = wasm_f32x4_lt(fabs4(max), fs(GROUP_MAX_EPS));
  V iscale = fdiv(fs(-(float)nmax), max);
  V sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; i++) {
    V l = i2f(clampi(nearest4(fmul(iscale, x[i])), -nmax, nmax - 1));
    Lf[i] = l;
    V w = fmul(x[i], x[i]);
    sumlx = fadd(sumlx, fmul(fmul(w, x[i]), l));
    suml2 = fadd(suml2, fmul(fmul(w, l), l));
  }
  for (int itry = 0; itry < 5; itry++) {
    V changed = is_(0);
    for (int i = 0; i < n; i++) {
      V xi = x[i];
      V w = fmul(xi, xi);
      V li = Lf[i];
      V wx = fmul(w, xi);
      V slx = fsub(sumlx, fmul(wx, li));
      V m = wasm_f32x4_gt(slx, zero);
      V sl2 = fsub(suml2, fmul(fmul(w, li), li));
      V nl = i2f(clampi(nearest4(fdiv(fmul(xi, sl2), slx)), -nmax, nmax - 1));
      m = wasm_v128_and(m, wasm_f32x4_ne(nl, li));
      slx = fadd(slx, fmul(wx, nl));
      sl2 = fadd(sl2, fmul(fmul(w, nl), nl));
      m = wasm_v128_and(m, wasm_f32x4_gt(sl2, zero));
      m = wasm_v128_and(m, wasm_f32x4_gt(fmul(fmul(slx, slx), suml2), fmul(fmul(sumlx, sumlx), sl2)));
      Lf[i] = sel(nl, li, m);
      sumlx = sel(slx, sumlx, m);
      suml2 = sel(sl2, suml2, m);
      changed = wasm_v128_or(changed, m);
    }
    if (!any(changed)) break;
  }
  V vnmax = is_(nmax);
  for (int i = 0; i < n; i++) {
    L[i] = sel(is_(0), wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(Lf[i]), vnmax), degenerate);
  }
  V scale = sel(fdiv(sumlx, suml2), zero, wasm_f32x4_gt(suml2, zero));
  return sel(zero, scale, degenerate);
}

/**
 * makeQpQuants: non-negative levels [0, nmax] of the sub-block scales under weights qw (n <= 16).
 * The reference keeps its levels in a Uint8Array and reads them back, so stored levels wrap to 8 bits
 * here too (Lu8 lanes hold the stored byte values).
 */
static V qp4(int n, int nmax, const V *x, const V *qw, V *Lu8) {
  V zero = fs(0);
  V max = zero;
  for (int i = 0; i < n; i++) max = wasm_f32x4_pmax(max, x[i]);
  V degenerate = wasm_f32x4_lt(max, fs(GROUP_MAX_EPS));
  V fnmax = fs((float)nmax);
  V iscale = fdiv(fnmax, max);
  V scale = fdiv(fs(1), iscale);
  V bestMse = zero;
  for (int i = 0; i < n; i++) {
    V l = wasm_v128_and(nearest4(fmul(iscale, x[i])), is_(0xff));
    V diff = fsub(x[i], fmul(scale, i2f(l)));
    bestMse = fadd(bestMse, fmul(fmul(qw[i], diff), diff));
  }
  for (int is = -4; is <= 4; is++) {
    if (is == 0) continue;
    float t = 0.1f * (float)is;
    t = t + (float)nmax;
    V iscaleIs = fdiv(fs(t), max);
    V scaleIs = fdiv(fs(1), iscaleIs);
    V mse = zero;
    for (int i = 0; i < n; i++) {
      V l = wasm_i32x4_min(nearest4(fmul(iscaleIs, x[i])), is_(nmax));
      V diff = fsub(x[i], fmul(scaleIs, i2f(l)));
      mse = fadd(mse, fmul(fmul(qw[i], diff), diff));
    }
    V acc = wasm_f32x4_lt(mse, bestMse);
    bestMse = sel(mse, bestMse, acc);
    iscale = sel(iscaleIs, iscale, acc);
  }
  V sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; i++) {
    V l = wasm_i32x4_min(nearest4(fmul(iscale, x[i])), is_(nmax));
    Lu8[i] = wasm_v128_and(l, is_(0xff));
    V lf = i2f(l);
    sumlx = fadd(sumlx, fmul(fmul(qw[i], x[i]), lf));
    suml2 = fadd(suml2, fmul(fmul(qw[i], lf), lf));
  }
  for (int itry = 0; itry < 5; itry++) {
    V changed = is_(0);
    for (int i = 0; i < n; i++) {
      V w = qw[i], xi = x[i];
      V li = i2f(Lu8[i]);
      V wx = fmul(w, xi);
      V slx = fsub(sumlx, fmul(wx, li));
      V sl2 = fsub(suml2, fmul(fmul(w, li), li));
      V m = wasm_v128_and(wasm_f32x4_gt(slx, zero), wasm_f32x4_gt(sl2, zero));
      V nli = wasm_i32x4_min(nearest4(fdiv(fmul(xi, sl2), slx)), is_(nmax));
      m = wasm_v128_and(m, wasm_i32x4_ne(nli, Lu8[i]));
      V nl = i2f(nli);
      slx = fadd(slx, fmul(wx, nl));
      sl2 = fadd(sl2, fmul(fmul(w, nl), nl));
      m = wasm_v128_and(m, wasm_f32x4_gt(fmul(fmul(slx, slx), suml2), fmul(fmul(sumlx, sumlx), sl2)));
      Lu8[i] = sel(wasm_v128_and(nli, is_(0xff)), Lu8[i], m);
      sumlx = sel(slx, sumlx, m);
      suml2 = sel(sl2, suml2, m);
      changed = wasm_v128_or(changed, m);
    }
    if (!any(changed)) break;
  }
  for (int i = 0; i < n; i++) Lu8[i] = sel(is_(0), Lu8[i], degenerate);
  V res = sel(fdiv(sumlx, suml2), zero, wasm_f32x4_gt(suml2, zero));
  return sel(zero, res, degenerate);
}

#endif
