import { describe, expect, test } from 'vitest';

import { formatBytes, formatEta, formatSpeed } from '../src/format.js';

describe('formatSpeed', () => {
  test.each([
    [0, '0 B/s'],
    [1, '1 B/s'],
    [512, '512 B/s'],
    [999, '999 B/s'],
    [999.4, '999 B/s'],
    [999.5, '1.0 kB/s'],
    [1000, '1.0 kB/s'],
    [1234, '1.2 kB/s'],
    [99_949, '99.9 kB/s'],
    [99_950, '100 kB/s'],
    [123_456, '123 kB/s'],
    [999_499, '999 kB/s'],
    [999_500, '1.0 MB/s'],
    [1_200_000, '1.2 MB/s'],
    [1_250_000, '1.3 MB/s'],
    [45_600_000, '45.6 MB/s'],
    [3_000_000_000, '3.0 GB/s'],
    [7.5e15, '7.5 PB/s'],
    [2e18, '2000 PB/s'],
  ])('%d B/s reads %s', (speed, text) => {
    expect(formatSpeed(speed)).toBe(text);
  });

  test.each([[-5], [Number.NaN], [Number.POSITIVE_INFINITY]])('%d is 0 B/s', (speed) => {
    expect(formatSpeed(speed)).toBe('0 B/s');
  });
});

describe('formatBytes', () => {
  test('sizes have no rate', () => {
    expect(formatBytes(2_621_440)).toBe('2.6 MB');
    expect(formatBytes(307_200)).toBe('307 kB');
  });
});

describe('formatEta', () => {
  test.each([
    [0, '0s'],
    [0.2, '1s'],
    [1, '1s'],
    [12, '12s'],
    [12.3, '13s'],
    [59, '59s'],
    [59.5, '1m 00s'],
    [60, '1m 00s'],
    [185, '3m 05s'],
    [3599, '59m 59s'],
    [3600, '1h 00m'],
    [3720, '1h 02m'],
    [86_399, '23h 59m'],
    [86_400, '1d 00h'],
    [2 * 86_400 + 3 * 3600 + 59, '2d 03h'],
  ])('%d s reads %s', (seconds, text) => {
    expect(formatEta(seconds)).toBe(text);
  });

  test.each([[null], [undefined], [-1], [Number.NaN], [Number.POSITIVE_INFINITY]])(
    '%s reads nothing',
    (seconds) => {
      expect(formatEta(seconds)).toBe('');
    },
  );
});
