'use strict';
// GraphQL front end that behaves like Geth v1.17.5 (graph-gophers/graphql-go
// v1.3.0 inside): graphql-js parses and validates (with Geth-worded rules for
// the messages clients actually see), then a small executor walks the
// validated document and writes JSON directly (fast, and with graph-gophers'
// argument coercion, error and null-propagation rules).

const fs = require('fs');
const path = require('path');
const {
  buildSchema,
  parse,
  validate,
  specifiedRules,
  FieldsOnCorrectTypeRule,
  KnownArgumentNamesRule,
  ValuesOfCorrectTypeRule,
  ProvidedRequiredArgumentsRule,
  GraphQLError,
  Kind,
  print,
  getLocation,
  isNonNullType,
  isListType,
  isInputObjectType,
  isScalarType,
  isEnumType,
  isObjectType,
  getNamedType,
  execute: gqlExecute,
  Lexer,
  Source,
  TokenKind,
} = require('graphql');
const {
  Int32, GoPanic, GoError, TimeoutSignal, goQuote, goTypeName, goFormatValue,
  deserializeIntLiteral, SCALAR_PARSERS, goJSONString,
} = require('./geth-values');

const MAX_QUERY_DEPTH = 20; // graphql/service.go maxQueryDepth

let cachedSchema = null;
function loadSchema() {
  if (!cachedSchema) {
    const sdl = fs.readFileSync(path.join(__dirname, '..', 'schema.graphql'), 'utf8');
    cachedSchema = buildSchema(sdl);
  }
  return cachedSchema;
}

// ---------------------------------------------------------------------------
// Validation (Geth wording)

function levenshtein(s1, s2) {
  const column = new Array(s1.length + 1);
  for (let y = 0; y <= s1.length; y++) column[y] = y;
  for (let x = 0; x < s2.length; x++) {
    column[0] = x + 1;
    let lastdiag = x;
    for (let y = 0; y < s1.length; y++) {
      const olddiag = column[y + 1];
      if (s1[y] !== s2[x]) lastdiag++;
      column[y + 1] = Math.min(column[y + 1] + 1, Math.min(column[y] + 1, lastdiag));
      lastdiag = olddiag;
    }
  }
  return column[s1.length];
}

// graph-gophers internal/validation/suggestion.go makeSuggestion
function makeSuggestion(prefix, options, input) {
  const selected = [];
  for (const opt of options) {
    const distance = levenshtein(input, opt);
    const threshold = Math.max(Math.floor(input.length / 2), Math.max(Math.floor(opt.length / 2), 1));
    if (distance < threshold) selected.push({ opt, distance });
  }
  if (selected.length === 0) return '';
  selected.sort((a, b) => a.distance - b.distance); // stable, like Go's insertion sort for short lists
  const parts = selected.map((s) => goQuote(s.opt));
  if (parts.length > 1) parts[parts.length - 1] = 'or ' + parts[parts.length - 1];
  return ` ${prefix} ${parts.join(', ')}?`;
}

function GethFieldsOnCorrectTypeRule(context) {
  return {
    Field(node) {
      const type = context.getParentType();
      if (!type) return;
      if (context.getFieldDef()) return;
      const name = node.name.value;
      if (name === '__typename' || name === '__schema' || name === '__type') return;
      const names = typeof type.getFields === 'function' ? Object.keys(type.getFields()) : [];
      const suggestion = makeSuggestion('Did you mean', names, name);
      context.reportError(new GraphQLError(
        `Cannot query field ${goQuote(name)} on type ${goQuote(type.name)}.${suggestion}`,
        { nodes: node },
      ));
    },
  };
}

function isPrimitiveValueNode(v) {
  return v.kind === Kind.INT || v.kind === Kind.FLOAT || v.kind === Kind.STRING ||
    v.kind === Kind.BOOLEAN || v.kind === Kind.ENUM;
}

// graph-gophers validateBasicLit
function validateBasicLit(v, t) {
  if (isScalarType(t)) {
    switch (t.name) {
      case 'Int': {
        if (v.kind !== Kind.INT) return false;
        const f = parseFloat(v.value);
        return f >= -2147483648 && f <= 2147483647;
      }
      case 'Float': return v.kind === Kind.INT || v.kind === Kind.FLOAT;
      case 'String': return v.kind === Kind.STRING;
      case 'Boolean': return v.kind === Kind.BOOLEAN;
      case 'ID': return v.kind === Kind.INT || v.kind === Kind.STRING;
      default: return true; // custom scalars are checked when unmarshalled
    }
  }
  if (isEnumType(t)) {
    if (v.kind !== Kind.ENUM) return false;
    return t.getValues().some((e) => e.name === v.value);
  }
  return false;
}

// graph-gophers validateValueType -> [ok, reason]
function validateValueType(v, t) {
  if (v.kind === Kind.VARIABLE) return [true, ''];
  if (isNonNullType(t)) {
    if (v.kind === Kind.NULL) return [false, `Expected ${goQuote(String(t))}, found null.`];
    t = t.ofType;
  }
  if (v.kind === Kind.NULL) return [true, ''];
  if (isScalarType(t) || isEnumType(t)) {
    if (isPrimitiveValueNode(v)) {
      if (validateBasicLit(v, t)) return [true, ''];
      return [false, `Expected type ${goQuote(String(t))}, found ${print(v)}.`];
    }
    return [true, ''];
  }
  if (isListType(t)) {
    if (v.kind !== Kind.LIST) return validateValueType(v, t.ofType);
    for (let i = 0; i < v.values.length; i++) {
      const [ok, reason] = validateValueType(v.values[i], t.ofType);
      if (!ok) return [false, `In element #${i}: ${reason}`];
    }
    return [true, ''];
  }
  if (isInputObjectType(t)) {
    if (v.kind !== Kind.OBJECT) return [false, `Expected ${goQuote(String(t))}, found not an object.`];
    const fields = t.getFields();
    for (const f of v.fields) {
      const name = f.name.value;
      const iv = fields[name];
      if (!iv) return [false, `In field ${goQuote(name)}: Unknown field.`];
      const [ok, reason] = validateValueType(f.value, iv.type);
      if (!ok) return [false, `In field ${goQuote(name)}: ${reason}`];
    }
    for (const iv of Object.values(fields)) {
      const found = v.fields.some((f) => f.name.value === iv.name);
      if (!found && isNonNullType(iv.type) && iv.defaultValue === undefined) {
        return [false, `In field ${goQuote(iv.name)}: Expected ${goQuote(String(iv.type))}, found null.`];
      }
    }
    return [true, ''];
  }
  return [false, `Expected type ${goQuote(String(t))}, found ${print(v)}.`];
}

// graph-gophers validateArgumentTypes: KnownArgumentNames,
// ArgumentsOfCorrectType and ProvidedNonNullArguments in one pass.
function checkArguments(context, args, argDefs, locNode, owner1, owner2) {
  for (const a of args || []) {
    const def = argDefs.find((d) => d.name === a.name.value);
    if (!def) {
      context.reportError(new GraphQLError(
        `Unknown argument ${goQuote(a.name.value)} on ${owner1()}.`, { nodes: a.name }));
      continue;
    }
    const [ok, reason] = validateValueType(a.value, def.type);
    if (!ok) {
      context.reportError(new GraphQLError(
        `Argument ${goQuote(def.name)} has invalid value ${print(a.value)}.\n${reason}`, { nodes: a.value }));
    }
  }
  for (const def of argDefs) {
    if (isNonNullType(def.type) && !(args || []).some((a) => a.name.value === def.name)) {
      context.reportError(new GraphQLError(
        `${owner2()} argument ${goQuote(def.name)} of type ${goQuote(String(def.type))} is required but not provided.`,
        { nodes: locNode }));
    }
  }
}

function GethArgumentsRule(context) {
  return {
    Field(node) {
      const def = context.getFieldDef();
      const parent = context.getParentType();
      if (!def || !parent) return;
      const name = node.name.value;
      checkArguments(context, node.arguments, def.args, node,
        () => `field ${goQuote(name)} of type ${goQuote(parent.name)}`,
        () => `Field ${goQuote(name)}`);
    },
    Directive(node) {
      const dir = context.getDirective();
      if (!dir) return;
      const name = '@' + node.name.value;
      checkArguments(context, node.arguments, dir.args, node.name,
        () => `directive ${goQuote(name)}`,
        () => `Directive ${goQuote(name)}`);
    },
  };
}

const REPLACED_RULES = new Set([
  FieldsOnCorrectTypeRule,
  KnownArgumentNamesRule,
  ValuesOfCorrectTypeRule,
  ProvidedRequiredArgumentsRule,
]);
const GETH_RULES = specifiedRules
  .filter((r) => !REPLACED_RULES.has(r))
  .concat([GethFieldsOnCorrectTypeRule, GethArgumentsRule]);

function locOf(doc, node) {
  if (!node || !node.loc) return undefined;
  const { line, column } = getLocation(doc.loc.source, node.loc.start);
  return { line, column };
}

// graph-gophers validateMaxDepth: checked first, aborts validation when hit.
function checkMaxDepth(doc, maxDepth) {
  const frags = new Map();
  for (const d of doc.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) frags.set(d.name.value, d);
  }
  const errors = [];
  for (const op of doc.definitions) {
    if (op.kind !== Kind.OPERATION_DEFINITION) continue;
    const visited = new Set();
    const walk = (sels, depth) => {
      let exceeded = false;
      for (const sel of sels) {
        if (sel.kind === Kind.FIELD) {
          if (depth > maxDepth) {
            exceeded = true;
            errors.push({
              message: `Field ${goQuote(sel.name.value)} has depth ${depth} that exceeds max depth ${maxDepth}`,
              locations: [locOf(doc, sel)],
            });
            continue;
          }
          if (sel.selectionSet) exceeded = exceeded || walk(sel.selectionSet.selections, depth + 1);
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          exceeded = exceeded || walk(sel.selectionSet.selections, depth);
        } else if (sel.kind === Kind.FRAGMENT_SPREAD) {
          const frag = frags.get(sel.name.value);
          if (!frag) {
            errors.push({
              message: `Unknown fragment ${goQuote(sel.name.value)}. Unable to evaluate depth.`,
              locations: [locOf(doc, sel)],
            });
            continue;
          }
          if (visited.has(frag)) continue;
          visited.add(frag);
          exceeded = exceeded || walk(frag.selectionSet.selections, depth);
        }
      }
      return exceeded;
    };
    if (walk(op.selectionSet.selections, 1)) return { exceeded: true, errors };
  }
  return { exceeded: false, errors };
}

function isEmptyDocument(query) {
  try {
    return new Lexer(new Source(query)).advance().kind === TokenKind.EOF;
  } catch (e) {
    return false;
  }
}

function syntaxErrorMessage(e) {
  // graphql-js: 'Syntax Error: Expected Name, found "}".' ; Geth: 'syntax error: unexpected "}", expecting Ident'
  let m = String(e.message).replace(/^Syntax Error: /, '');
  const mm = /^Expected (.*), found (.*)\.$/.exec(m);
  if (mm) m = `unexpected ${mm[2]}, expecting ${mm[1]}`;
  return 'syntax error: ' + m;
}

// Parsed and validated documents are cached per query text (the variables
// are validated per request).
class DocumentCache {
  constructor(schema, max = 512) {
    this.schema = schema;
    this.max = max;
    this.map = new Map();
  }

  get(query) {
    let e = this.map.get(query);
    if (e) {
      this.map.delete(query);
      this.map.set(query, e);
      return e;
    }
    e = this.compile(query);
    this.map.set(query, e);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
    return e;
  }

  compile(query) {
    let doc;
    try {
      doc = parse(query, { noLocation: false });
    } catch (e) {
      if (isEmptyDocument(query)) {
        // graph-gophers accepts an empty document; execution then reports
        // "no operations in query document".
        return { doc: { kind: Kind.DOCUMENT, definitions: [] }, errors: [] };
      }
      const locations = e.locations ? e.locations.map((l) => ({ line: l.line, column: l.column })) : undefined;
      return { doc: null, errors: [{ message: syntaxErrorMessage(e), locations }] };
    }
    const depth = checkMaxDepth(doc, MAX_QUERY_DEPTH);
    if (depth.exceeded) return { doc, errors: depth.errors };
    const errs = validate(this.schema, doc, GETH_RULES, { maxErrors: 1000 }).map((e) => ({
      message: e.message,
      locations: e.locations ? e.locations.map((l) => ({ line: l.line, column: l.column })) : undefined,
    }));
    return { doc, errors: depth.errors.concat(errs) };
  }
}

// graph-gophers validateValue for operation variables.
function validateVariables(schema, doc, variables) {
  const errors = [];
  const typeFromAst = (node) => {
    if (node.kind === Kind.NON_NULL_TYPE) {
      const inner = typeFromAst(node.type);
      return inner && { nonNull: true, ofType: inner, str: inner.str + '!' };
    }
    if (node.kind === Kind.LIST_TYPE) {
      const inner = typeFromAst(node.type);
      return inner && { list: true, ofType: inner, str: '[' + inner.str + ']' };
    }
    const named = schema.getType(node.name.value);
    return named && { named, str: named.name };
  };
  const fromSchemaType = (t) => {
    if (isNonNullType(t)) { const i = fromSchemaType(t.ofType); return { nonNull: true, ofType: i, str: i.str + '!' }; }
    if (isListType(t)) { const i = fromSchemaType(t.ofType); return { list: true, ofType: i, str: '[' + i.str + ']' }; }
    return { named: t, str: t.name };
  };
  const check = (name, loc, val, t) => {
    if (t.nonNull) {
      if (val === null || val === undefined) {
        errors.push({
          message: `Variable "${name}" has invalid value null.\nExpected type "${t.str}", found null.`,
          locations: [loc],
        });
        return;
      }
      check(name, loc, val, t.ofType);
      return;
    }
    if (t.list) {
      if (val === null || val === undefined) return;
      if (!Array.isArray(val)) { check(name, loc, val, t.ofType); return; }
      for (const e of val) check(name, loc, e, t.ofType);
      return;
    }
    const n = t.named;
    if (isEnumType(n)) {
      if (val === null || val === undefined) return;
      if (typeof val !== 'string') {
        errors.push({ message: `Variable "${name}" has invalid type ${goTypeName(val)}.\nExpected type "${n.name}", found ${goFormatValue(val)}.`, locations: [loc] });
        return;
      }
      if (!n.getValues().some((e) => e.name === val)) {
        errors.push({ message: `Variable "${name}" has invalid value ${val}.\nExpected type "${n.name}", found ${val}.`, locations: [loc] });
      }
      return;
    }
    if (isInputObjectType(n)) {
      if (val === null || val === undefined) return;
      if (typeof val !== 'object' || Array.isArray(val)) {
        errors.push({ message: `Variable "${name}" has invalid type ${goTypeName(val)}.\nExpected type "${n.name}", found ${goFormatValue(val)}.`, locations: [loc] });
        return;
      }
      for (const f of Object.values(n.getFields())) {
        check(f.name, loc, Object.prototype.hasOwnProperty.call(val, f.name) ? val[f.name] : null, fromSchemaType(f.type));
      }
    }
  };
  for (const op of doc.definitions) {
    if (op.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const vd of op.variableDefinitions || []) {
      const t = typeFromAst(vd.type);
      if (!t) continue;
      const name = vd.variable.name.value;
      const val = variables && Object.prototype.hasOwnProperty.call(variables, name) ? variables[name] : null;
      check(name, locOf(doc, vd), val, t);
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------
// Execution

// AST literal -> Go value (types.Value.Deserialize)
function deserialize(node, vars) {
  switch (node.kind) {
    case Kind.INT: return deserializeIntLiteral(node.value);
    case Kind.FLOAT: return parseFloat(node.value);
    case Kind.STRING: return node.value;
    case Kind.BOOLEAN: return node.value;
    case Kind.NULL: return null;
    case Kind.ENUM: return node.value;
    case Kind.LIST: return node.values.map((v) => deserialize(v, vars));
    case Kind.OBJECT: {
      const o = {};
      for (const f of node.fields) o[f.name.value] = deserialize(f.value, vars);
      return o;
    }
    case Kind.VARIABLE: {
      const n = node.name.value;
      return Object.prototype.hasOwnProperty.call(vars, n) ? vars[n] : null;
    }
    default: return null;
  }
}

// Go value -> typed argument (packer.Pack)
function pack(value, type) {
  if (isNonNullType(type)) {
    if (value === null || value === undefined) throw new GoError('got null for non-null');
    return packInner(value, type.ofType);
  }
  if (value === null || value === undefined) return null;
  return packInner(value, type);
}

function packInner(value, type) {
  if (isListType(type)) {
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => pack(v, type.ofType));
  }
  if (isInputObjectType(type)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Int32) {
      throw new GoPanic(`interface conversion: interface {} is ${goTypeName(value)}, not map[string]interface {}`);
    }
    const out = {};
    for (const f of Object.values(type.getFields())) {
      if (Object.prototype.hasOwnProperty.call(value, f.name)) out[f.name] = pack(value[f.name], f.type);
      else out[f.name] = null;
    }
    return out;
  }
  const parser = SCALAR_PARSERS[type.name];
  if (parser) return parser(value);
  switch (type.name) {
    case 'Boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'String':
      if (typeof value === 'string') return value;
      break;
    case 'Int':
      if (value instanceof Int32) return value.v;
      if (typeof value === 'number') return Math.trunc(value);
      break;
    default:
      return value;
  }
  throw new GoError(`could not unmarshal ${goFormatValue(value)} (${goTypeName(value)}) into ${type.name.toLowerCase()}`);
}

function evalDirectiveIf(dir, vars) {
  const arg = (dir.arguments || []).find((a) => a.name.value === 'if');
  if (!arg) return false;
  const v = deserialize(arg.value, vars);
  if (typeof v !== 'boolean') throw new GoError('got null for non-null');
  return v;
}

function skipByDirective(node, vars, errors) {
  for (const d of node.directives || []) {
    try {
      if (d.name.value === 'skip' && evalDirectiveIf(d, vars)) return true;
      if (d.name.value === 'include' && !evalDirectiveIf(d, vars)) return true;
    } catch (e) {
      if (e instanceof GoError) { errors.push({ message: e.message }); return false; }
      throw e;
    }
  }
  return false;
}

function typeInfo(type) {
  const nonNull = isNonNullType(type);
  const t = nonNull ? type.ofType : type;
  if (isListType(t)) return { nonNull, list: typeInfo(t.ofType), named: getNamedType(t), str: String(t) };
  return { nonNull, list: null, named: t, scalar: isScalarType(t) || isEnumType(t), str: String(t) };
}

// Builds the execution plan like graph-gophers' selected.ApplyOperation:
// argument errors are recorded without path and truncate the current
// selection list; integer literal overflows panic.
function applySelectionSet(st, selections, objType) {
  const out = [];
  const byAlias = new Map();
  const add = (pf) => {
    const prev = byAlias.get(pf.alias);
    if (prev) {
      if (pf.sub && prev.sub) prev.sub = mergePlans(prev.sub, pf.sub);
      return;
    }
    byAlias.set(pf.alias, pf);
    out.push(pf);
  };
  for (const sel of selections) {
    if (sel.kind === Kind.FIELD) {
      if (skipByDirective(sel, st.vars, st.errors)) continue;
      const name = sel.name.value;
      const alias = sel.alias ? sel.alias.value : name;
      if (name === '__typename') {
        add({ alias, name, typename: objType.name, ti: { nonNull: true, list: null, scalar: true, str: 'String' }, keyPrefix: '"' + alias + '":', commaKeyPrefix: ',"' + alias + '":' });
        continue;
      }
      if (name === '__schema' || name === '__type') {
        add({ alias, name, introspection: sel, ti: { nonNull: name === '__schema', list: null, scalar: true, str: name }, keyPrefix: '"' + alias + '":', commaKeyPrefix: ',"' + alias + '":' });
        continue;
      }
      const def = objType.getFields()[name];
      if (!def) continue; // unreachable after validation
      let args = null;
      if (def.args.length > 0) {
        const provided = new Map();
        for (const a of sel.arguments || []) provided.set(a.name.value, deserialize(a.value, st.vars));
        args = {};
        try {
          for (const ad of def.args) {
            if (provided.has(ad.name)) args[ad.name] = pack(provided.get(ad.name), ad.type);
            else args[ad.name] = null;
          }
        } catch (e) {
          if (e instanceof GoError) {
            st.errors.push({ message: e.message });
            return out;
          }
          throw e;
        }
      }
      const ti = typeInfo(def.type);
      let sub = null;
      if (sel.selectionSet && isObjectType(ti.named)) sub = applySelectionSet(st, sel.selectionSet.selections, ti.named);
      add({ alias, name, def, args, ti, sub, resolve: st.resolverFor(objType.name, name), keyPrefix: '"' + alias + '":', commaKeyPrefix: ',"' + alias + '":' });
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      if (skipByDirective(sel, st.vars, st.errors)) continue;
      for (const pf of applySelectionSet(st, sel.selectionSet.selections, objType)) add(pf);
    } else if (sel.kind === Kind.FRAGMENT_SPREAD) {
      if (skipByDirective(sel, st.vars, st.errors)) continue;
      const frag = st.fragments.get(sel.name.value);
      if (!frag) continue;
      for (const pf of applySelectionSet(st, frag.selectionSet.selections, objType)) add(pf);
    }
  }
  return out;
}

function mergePlans(a, b) {
  const out = a.slice();
  const byAlias = new Map(out.map((pf) => [pf.alias, pf]));
  for (const pf of b) {
    const prev = byAlias.get(pf.alias);
    if (prev) {
      if (prev.sub && pf.sub) {
        const merged = Object.assign({}, prev, { sub: mergePlans(prev.sub, pf.sub) });
        out[out.indexOf(prev)] = merged;
        byAlias.set(pf.alias, merged);
      }
    } else {
      byAlias.set(pf.alias, pf);
      out.push(pf);
    }
  }
  return out;
}


// Output buffer for JSON text: a list of 1 MiB Buffers written in place, so
// that large answers neither build big JS strings nor stress the GC.
// mark()/rewind() undo output when a non-null field turns out null.
const WRITER_CHUNK = 1024 * 1024;

class Writer {
  constructor() {
    this.chunks = []; // [{buf, len}]
    this.buf = Buffer.allocUnsafe(16 * 1024); // chunks grow up to WRITER_CHUNK
    this.pos = 0;
  }

  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    this.chunks.push({ buf: this.buf, len: this.pos });
    this.buf = Buffer.allocUnsafe(Math.max(Math.min(WRITER_CHUNK, this.buf.length * 2), n));
    this.pos = 0;
  }

  str(s) {
    const n = s.length;
    if (n > 64) {
      this.ensure(n * 3);
      this.pos += this.buf.utf8Write(s, this.pos);
      return;
    }
    this.ensure(n * 3);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) {
        this.pos = p + buf.utf8Write(s.slice(i), p);
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  rewind(ci, pos) {
    if (this.chunks.length > ci) {
      this.buf = this.chunks[ci].buf;
      this.chunks.length = ci;
    }
    this.pos = pos;
  }

  finish() {
    const out = this.chunks.map((c) => c.buf.subarray(0, c.len));
    out.push(this.buf.subarray(0, this.pos));
    return out;
  }
}

class Executor {
  constructor(schema, resolvers, ctx, errors, introspect) {
    this.schema = schema;
    this.resolvers = resolvers;
    this.ctx = ctx;
    this.errors = errors;
    this.introspect = introspect;
    this.failName = ctx.failField ? ctx.failField.name : null;
    this.failLeft = ctx.failField ? (ctx.failField.occurrence || 1) : 0;
    this.deadline = ctx.deadline || 0;
    this.ticks = 0;
    this.w = new Writer();
    this.path = [];
  }

  checkDeadline() {
    if (this.deadline && Date.now() > this.deadline) throw new TimeoutSignal('request timed out');
  }

  // Each exec/complete method writes JSON and returns true when it wrote
  // null. this.path is the response path of the value being produced.
  execObject(plan, obj) {
    const w = this.w;
    const mci = w.chunks.length;
    const mpos = w.pos;
    const path = this.path;
    w.str('{');
    let nulled = false;
    for (let i = 0; i < plan.length; i++) {
      const pf = plan[i];
      w.str(i === 0 ? pf.keyPrefix : pf.commaKeyPrefix);
      path.push(pf.alias);
      const isNull = this.execField(pf, obj);
      path.pop();
      if (isNull && pf.ti.nonNull) nulled = true;
    }
    if (nulled) {
      w.rewind(mci, mpos);
      w.str('null');
      return true;
    }
    w.str('}');
    return false;
  }

  execField(pf, obj) {
    const w = this.w;
    if (pf.typename !== undefined) { w.str('"' + pf.typename + '"'); return false; }
    if (pf.introspection) {
      const j = this.introspect(pf);
      w.str(j);
      return j === 'null';
    }
    let v;
    if (this.failName !== null && pf.name === this.failName && --this.failLeft === 0) {
      this.errors.push({ message: this.ctx.failField.message || 'fault injected: resolver error', path: this.path.slice() });
      w.str('null');
      return true;
    }
    try {
      v = pf.resolve(obj, pf.args, this.ctx);
    } catch (e) {
      if (e instanceof GoError) {
        this.errors.push({ message: e.message, path: this.path.slice() });
        w.str('null');
        return true;
      }
      throw e;
    }
    return this.complete(v, pf.ti, pf.sub);
  }

  complete(v, ti, sub) {
    const w = this.w;
    if (v === null || v === undefined) {
      if (ti.nonNull) {
        this.errors.push({ message: `graphql: got nil for non-null ${goQuote(ti.str)}`, path: this.path.slice() });
      }
      w.str('null');
      return true;
    }
    if (ti.list) {
      const eti = ti.list;
      const n = v.length;
      if (n === 0) { w.str('[]'); return false; }
      const mci = w.chunks.length;
      const mpos = w.pos;
      const isBlock = eti.named && eti.named.name === 'Block';
      const path = this.path;
      let nulled = false;
      w.str('[');
      const lazy = typeof v.get === 'function'; // LazyList from a chain source
      for (let i = 0; i < n; i++) {
        if (isBlock || (++this.ticks & 255) === 0) this.checkDeadline();
        if (i > 0) w.str(',');
        path.push(i);
        if (this.complete(lazy ? v.get(i) : v[i], eti, sub) && eti.nonNull) nulled = true;
        path.pop();
      }
      if (nulled) {
        w.rewind(mci, mpos);
        w.str('null');
        return true;
      }
      w.str(']');
      return false;
    }
    if (ti.scalar) {
      if (typeof v === 'string') {
        w.str('"');
        w.str(v);
        w.str('"');
      } else {
        w.str(JSON.stringify(v));
      }
      return false;
    }
    return this.execObject(sub, v);
  }
}

function getOperation(doc, operationName) {
  const ops = doc.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (ops.length === 0) throw new GoError('no operations in query document');
  if (!operationName) {
    if (ops.length > 1) throw new GoError('more than one operation in query document and no operation name given');
    return ops[0];
  }
  const op = ops.find((o) => o.name && o.name.value === operationName);
  if (!op) throw new GoError(`no operation with name ${goQuote(operationName)}`);
  return op;
}

// Executes a (cached) document. Returns {errors, data} where data is a JSON
// text or undefined (omitted, as graph-gophers does for pre-execution errors).
function executeRequest(schema, entry, operationName, variables, resolvers, ctx) {
  if (entry.errors.length > 0 && !entry.doc) return { errors: entry.errors };
  const doc = entry.doc;
  const varErrors = validateVariables(schema, doc, variables || {});
  const valErrors = entry.errors.concat(varErrors);
  if (valErrors.length > 0) return { errors: valErrors };

  let op;
  try {
    op = getOperation(doc, operationName);
  } catch (e) {
    return { errors: [{ message: e.message }] };
  }
  if (op.operation === 'subscription') return { errors: [{ message: 'graphql-ws protocol header is missing' }] };

  const vars = Object.assign({}, variables || {});
  const errors = [];
  const fragments = new Map();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const rootType = op.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType();

  const st = {
    vars,
    errors,
    fragments,
    resolverFor: (typeName, fieldName) => {
      const r = resolvers[typeName] && resolvers[typeName][fieldName];
      if (r) return r;
      return () => { throw new GoError(`field ${typeName}.${fieldName} is not supported by the ethwhale test server`); };
    },
  };
  let plan;
  try {
    for (const vd of op.variableDefinitions || []) {
      const n = vd.variable.name.value;
      if (!Object.prototype.hasOwnProperty.call(vars, n) && vd.defaultValue) vars[n] = deserialize(vd.defaultValue, {});
    }
    plan = applySelectionSet(st, op.selectionSet.selections, rootType);
  } catch (e) {
    if (e instanceof GoPanic) return { errors: errors.concat([{ message: 'panic occurred: ' + e.message }]) };
    throw e;
  }

  const introspect = (pf) => {
    const subDoc = {
      kind: Kind.DOCUMENT,
      definitions: [Object.assign({}, op, { selectionSet: { kind: Kind.SELECTION_SET, selections: [pf.introspection] } })]
        .concat(doc.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)),
    };
    const r = gqlExecute({ schema, document: subDoc, variableValues: variables || {}, rootValue: {} });
    const v = r.data ? r.data[pf.alias] : null;
    return v === undefined || v === null ? 'null' : JSON.stringify(v);
  };

  const ex = new Executor(schema, resolvers, ctx, errors, introspect);
  const rootValue = ctx.root || {};
  ex.execObject(plan, rootValue);
  return { errors, data: ex.w.finish() };
}

// Serialises a result the way Geth's handler does (errors first, data omitted
// when absent). Returns an array of JSON pieces (join them for the text).
function serializeResponse(result) {
  const out = [];
  let head = '{';
  if (result.errors && result.errors.length > 0) {
    head += '"errors":[' + result.errors.map(serializeError).join(',') + ']';
    if (result.data !== undefined) head += ',';
  }
  if (result.data === undefined) return [head + '}'];
  out.push(head + '"data":');
  const d = result.data;
  if (Array.isArray(d)) {
    for (let i = 0; i < d.length; i++) out.push(d[i]);
  } else {
    out.push(d);
  }
  out.push('}');
  return out;
}

function serializeError(e) {
  let s = '{"message":' + goJSONString(e.message);
  if (e.locations && e.locations.length && e.locations[0]) {
    s += ',"locations":[' + e.locations.map((l) => `{"line":${l.line},"column":${l.column}}`).join(',') + ']';
  }
  if (e.path && e.path.length) s += ',"path":' + JSON.stringify(e.path);
  if (e.extensions) s += ',"extensions":' + JSON.stringify(e.extensions);
  return s + '}';
}

module.exports = {
  loadSchema,
  DocumentCache,
  executeRequest,
  serializeResponse,
  TimeoutSignal,
  makeSuggestion,
  deserialize,
  pack,
  MAX_QUERY_DEPTH,
};
