'use strict';
// Unit tests of the Geth input decoders (no server needed).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const v = require('../lib/geth-values');
const { makeSuggestion } = require('../lib/gql');

const err = (fn, msg) => assert.throws(fn, (e) => e instanceof v.GoError && e.message === msg, msg);

test('Long: hexutil / strconv semantics', () => {
  assert.equal(v.parseLong('0x7a120'), 500000);
  assert.equal(v.parseLong('500000'), 500000);
  assert.equal(v.parseLong('+5'), 5);
  assert.equal(v.parseLong(new v.Int32(7)), 7);
  assert.equal(v.parseLong(7.9), 7);
  assert.equal(v.parseLong('0xffffffffffffffff'), -1, 'uint64 stored in int64');
  err(() => v.parseLong('0x'), 'hex string "0x"');
  err(() => v.parseLong('0x0a'), 'hex number with leading zero digits');
  err(() => v.parseLong('0xg'), 'invalid hex string');
  err(() => v.parseLong('0x1ffffffffffffffff'), 'hex number > 64 bits');
  err(() => v.parseLong('0X10'), 'strconv.ParseInt: parsing "0X10": invalid syntax');
  err(() => v.parseLong('99999999999999999999'), 'strconv.ParseInt: parsing "99999999999999999999": value out of range');
  err(() => v.parseLong(true), 'unexpected type bool for Long');
  err(() => v.parseLong([1]), 'unexpected type []interface {} for Long');
});

test('int literals are 32-bit', () => {
  assert.equal(v.deserializeIntLiteral('2147483647').v, 2147483647);
  assert.throws(() => v.deserializeIntLiteral('2147483648'),
    (e) => e instanceof v.GoPanic && e.message === 'strconv.ParseInt: parsing "2147483648": value out of range');
});

test('BigInt: hex strings (or int32 literals) only', () => {
  assert.equal(v.parseBigInt('0xde0b6b3a7640000'), 10n ** 18n);
  assert.equal(v.parseBigInt(new v.Int32(5)), 5n);
  assert.equal(v.parseBigInt(''), 0n);
  err(() => v.parseBigInt('1000'), 'hex string without 0x prefix');
  err(() => v.parseBigInt(1000), 'unexpected type float64 for BigInt');
  err(() => v.parseBigInt('0x' + '1'.repeat(65)), 'hex number > 256 bits');
});

test('Bytes32, Address, Bytes', () => {
  assert.equal(v.parseHash('0x' + 'AB'.repeat(32)), '0x' + 'ab'.repeat(32));
  err(() => v.parseHash('0x12'), 'hex string has length 2, want 64 for Hash');
  err(() => v.parseHash('12'), 'hex string without 0x prefix');
  err(() => v.parseHash('0x123'), 'hex string of odd length');
  err(() => v.parseAddress('0x' + 'zz'.repeat(20)), 'invalid hex string');
  err(() => v.parseAddress(5), 'unexpected type float64 for Address');
  assert.equal(v.parseBytes('0x'), '0x');
  err(() => v.parseBytes(''), 'empty hex string');
  err(() => v.parseBytes('0x1'), 'hex string of odd length');
});

test('suggestions like graph-gophers', () => {
  assert.equal(makeSuggestion('Did you mean', ['number', 'hash', 'nonce'], 'numbr'), ' Did you mean "number"?');
  assert.equal(makeSuggestion('Did you mean', ['hash', 'nonce'], 'zzzzzzzz'), '');
  assert.equal(makeSuggestion('Did you mean', ['gas', 'gasUsed'], 'gasx'), ' Did you mean "gas"?');
  assert.equal(makeSuggestion('Did you mean', ['nonce', 'none'], 'nonc'), ' Did you mean "nonce", or "none"?');
});

test('Go JSON string escaping', () => {
  assert.equal(v.goJSONString('a > b & <c>'), '"a \\u003e b \\u0026 \\u003cc\\u003e"');
});
