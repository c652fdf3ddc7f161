// logstream run viewer: replays a run log's JSON Patch ops (RFC 6902) and draws a waterfall.
// Everything from the recording is shown as text (textContent), never as markup; control,
// bidi and line-separator characters are shown escaped (\u202e).
(function () {
  "use strict";

  // ---- JSON Patch (RFC 6902) over JSON Pointer (RFC 6901) --------------------------------
  var hasOwn = Object.prototype.hasOwnProperty;

  function PatchError(message) {
    this.name = "PatchError";
    this.message = message;
  }
  PatchError.prototype = Object.create(Error.prototype);

  function parsePointer(path) {
    if (typeof path !== "string") throw new PatchError("a path must be a string");
    if (path === "") return [];
    if (path.charAt(0) !== "/") throw new PatchError("a path must start with '/': " + path);
    var parts = path.substring(1).split("/");
    for (var i = 0; i < parts.length; i++) {
      parts[i] = parts[i].replace(/~1/g, "/").replace(/~0/g, "~");
    }
    return parts;
  }

  function isIndex(token) {
    return /^(0|[1-9][0-9]*)$/.test(token);
  }

  function clone(value) {
    return value === null || typeof value !== "object" ? value : JSON.parse(JSON.stringify(value));
  }

  function deepEqual(a, b) {
    if (a === b) return true;
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    var ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (var i = 0; i < ka.length; i++) {
      if (!hasOwn.call(b, ka[i]) || !deepEqual(a[ka[i]], b[ka[i]])) return false;
    }
    return true;
  }

  function setKey(obj, key, value) {
    if (key === "__proto__") {
      Object.defineProperty(obj, key, { value: value, writable: true, enumerable: true, configurable: true });
    } else {
      obj[key] = value;
    }
  }

  function resolve(doc, tokens, upTo) {
    var node = doc;
    for (var i = 0; i < upTo; i++) {
      var t = tokens[i];
      if (Array.isArray(node)) {
        if (!isIndex(t) || +t >= node.length) throw new PatchError("no item " + t);
        node = node[+t];
      } else if (node !== null && typeof node === "object") {
        if (!hasOwn.call(node, t)) throw new PatchError("no member " + t);
        node = node[t];
      } else {
        throw new PatchError("can't look into a " + (node === null ? "null" : typeof node));
      }
    }
    return node;
  }

  function getValue(doc, path) {
    var tokens = parsePointer(path);
    return resolve(doc, tokens, tokens.length);
  }

  function addValue(doc, tokens, value) {
    if (tokens.length === 0) return value;
    var parent = resolve(doc, tokens, tokens.length - 1);
    var last = tokens[tokens.length - 1];
    if (Array.isArray(parent)) {
      if (last === "-") parent.push(value);
      else if (isIndex(last) && +last <= parent.length) parent.splice(+last, 0, value);
      else throw new PatchError("bad array index " + last);
    } else if (parent !== null && typeof parent === "object") {
      setKey(parent, last, value);
    } else {
      throw new PatchError("can't add into a " + (parent === null ? "null" : typeof parent));
    }
    return doc;
  }

  function removeValue(doc, tokens) {
    if (tokens.length === 0) throw new PatchError("can't remove the whole document");
    var parent = resolve(doc, tokens, tokens.length - 1);
    var last = tokens[tokens.length - 1];
    var old;
    if (Array.isArray(parent)) {
      if (!isIndex(last) || +last >= parent.length) throw new PatchError("no item " + last);
      old = parent.splice(+last, 1)[0];
    } else if (parent !== null && typeof parent === "object" && hasOwn.call(parent, last)) {
      old = parent[last];
      delete parent[last];
    } else {
      throw new PatchError("no member " + last);
    }
    return old;
  }

  function replaceValue(doc, tokens, value) {
    if (tokens.length === 0) return value;
    var parent = resolve(doc, tokens, tokens.length - 1);
    var last = tokens[tokens.length - 1];
    if (Array.isArray(parent)) {
      if (!isIndex(last) || +last >= parent.length) throw new PatchError("no item " + last);
      parent[+last] = value;
    } else if (parent !== null && typeof parent === "object" && hasOwn.call(parent, last)) {
      setKey(parent, last, value);
    } else {
      throw new PatchError("no member " + last + " to replace");
    }
    return doc;
  }

  // Applies ops in order to doc (changed in place) and returns the new document.
  function applyPatch(doc, ops) {
    for (var i = 0; i < ops.length; i++) {
      var op = ops[i];
      var tokens = parsePointer(op.path);
      switch (op.op) {
        case "add": doc = addValue(doc, tokens, op.value); break;
        case "replace": doc = replaceValue(doc, tokens, op.value); break;
        case "remove": removeValue(doc, tokens); break;
        case "copy": doc = addValue(doc, tokens, clone(getValue(doc, op.from))); break;
        case "move": {
          var from = parsePointer(op.from);
          if (op.path === op.from) break;
          if (op.path.indexOf(op.from + "/") === 0) throw new PatchError("can't move a value into itself");
          var moved = removeValue(doc, from);
          doc = addValue(doc, tokens, moved);
          break;
        }
        case "test":
          if (!deepEqual(getValue(doc, op.path), op.value)) throw new PatchError("test failed at " + op.path);
          break;
        default: throw new PatchError("unknown op " + String(op.op));
      }
    }
    return doc;
  }

  // ---- text: everything from the data goes through here, then into textContent ----------
  var UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

  function escapeChar(ch) {
    var hex = ch.charCodeAt(0).toString(16);
    return "\\u" + "0000".substring(hex.length) + hex;
  }

  function safeText(value) {
    var text = typeof value === "string" ? value : asJson(value, 0);
    return text.replace(UNSAFE, escapeChar);
  }

  function asJson(value, indent) {
    if (value === undefined) return "";
    try {
      return JSON.stringify(value, null, indent);
    } catch (e) {
      return String(value);
    }
  }

  function shorten(text, limit) {
    return text.length <= limit ? text : text.substring(0, limit - 1) + "\u2026";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // ---- times ----------------------------------------------------------------------------
  var TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(\.\d+)?(Z|z|[+-]\d\d:?\d\d)?$/;

  // Milliseconds since the epoch (sub-millisecond digits kept), or NaN.
  function parseTime(value) {
    if (typeof value !== "string") return NaN;
    var m = TIME.exec(value);
    if (!m) return NaN;
    var base = Date.parse(m[1] + (m[3] && m[3] !== "z" ? m[3] : "Z"));
    return base + (m[2] ? parseFloat("0" + m[2]) * 1000 : 0);
  }

  function formatMs(ms) {
    if (!isFinite(ms)) return "-";
    var a = Math.abs(ms);
    if (a < 1) return (Math.round(ms * 1000) / 1000) + " ms";
    if (a < 1000) return (Math.round(ms * 10) / 10) + " ms";
    if (a < 100000) return (Math.round(ms / 10) / 100) + " s";
    return Math.round(ms / 1000) + " s";
  }

  // ---- the run log as the page sees it ---------------------------------------------------
  var TYPES = { chain: 1, llm: 1, chat_model: 1, tool: 1, retriever: 1, prompt: 1, parser: 1 };
  var STREAM_FIELDS = ["streamed_output_str", "streamed_output"];
  var ENTRY_OP = /^\/logs\/([^/]+)(?:\/([^/]+)(?:\/(-|\d+))?)?$/;

  function typeClass(type) {
    return typeof type === "string" && hasOwn.call(TYPES, type) ? type : "other";
  }

  function Log(live) {
    this.live = live; // a live page waits for more; a static one shows what it has as final
    this.reset(null);
    this.end = null; // {patches, error} once the log ended
    this.seq = 0; // patches applied
    this.position = 0; // the last position a live frame carried (0: none yet)
    this.snapshots = 0; // of them, snapshots (one replace of the whole state)
    this.times = []; // arrival time (ms) of each patch, when known (live)
  }

  Log.prototype.reset = function (state) {
    this.state = state;
    this.order = []; // log keys, in the order their entries were added
    this.known = Object.create(null);
    this.marks = Object.create(null); // key -> {start: seq, end: seq, tokens: [seq...]}
    if (state && typeof state === "object" && state.logs && typeof state.logs === "object") {
      var keys = Object.keys(state.logs);
      var starts = keys.map(function (k, i) {
        var e = state.logs[k];
        var t = e && typeof e === "object" ? parseTime(e.start_time) : NaN;
        return { k: k, t: isNaN(t) ? Infinity : t, i: i };
      });
      starts.sort(function (a, b) { return a.t - b.t || a.i - b.i; });
      for (var j = 0; j < starts.length; j++) this.note(starts[j].k);
    }
  };

  Log.prototype.note = function (key) {
    if (!this.known[key]) {
      this.known[key] = true;
      this.order.push(key);
    }
  };

  Log.prototype.mark = function (key) {
    var m = this.marks[key];
    if (!m) m = this.marks[key] = { start: null, end: null, tokens: { streamed_output_str: [], streamed_output: [] } };
    return m;
  };

  // Applies one patch; a snapshot (one replace of "") replaces the state.
  Log.prototype.apply = function (ops, when) {
    var seq = ++this.seq;
    this.times.push(when === undefined ? null : when);
    if (ops.length === 1 && ops[0].op === "replace" && ops[0].path === "") {
      this.snapshots++;
      this.reset(ops[0].value);
      return true;
    }
    this.state = applyPatch(this.state, ops);
    for (var i = 0; i < ops.length; i++) {
      var op = ops[i];
      if (op.path === "") { this.reset(this.state); continue; }
      var m = ENTRY_OP.exec(op.path);
      if (!m) continue;
      var key = m[1].replace(/~1/g, "/").replace(/~0/g, "~");
      if (!m[2]) {
        if (op.op === "add") { this.note(key); this.mark(key).start = seq; }
      } else if (m[2] === "end_time" && op.value != null) {
        this.mark(key).end = seq;
      } else if (m[3] === "-" && op.op === "add" && STREAM_FIELDS.indexOf(m[2]) >= 0) {
        this.mark(key).tokens[m[2]].push(seq);
      }
    }
    return false;
  };

  // The rows: the root, then every logged run depth-first under its nearest logged ancestor.
  Log.prototype.rows = function () {
    var state = this.state;
    if (!state || typeof state !== "object" || Array.isArray(state)) return { rows: [], t0: NaN, t1: NaN };
    var logs = state.logs && typeof state.logs === "object" && !Array.isArray(state.logs) ? state.logs : {};
    var ended = this.end !== null, over = ended || !this.live;
    var runs = [];
    var byId = Object.create(null);
    var t0 = Infinity, t1 = -Infinity;
    for (var i = 0; i < this.order.length; i++) {
      var key = this.order[i];
      if (!hasOwn.call(logs, key)) continue;
      var entry = logs[key];
      if (!entry || typeof entry !== "object" || Array.isArray(entry)) entry = {};
      var start = parseTime(entry.start_time), end = parseTime(entry.end_time);
      if (!isNaN(start)) { t0 = Math.min(t0, start); t1 = Math.max(t1, start); }
      if (!isNaN(end)) t1 = Math.max(t1, end);
      var error = entry.error;
      var status = error !== undefined && error !== null ? "error"
        : entry.end_time !== undefined && entry.end_time !== null ? "done"
        : over ? "unfinished" : "running";
      var run = {
        key: key, entry: entry, name: typeof entry.name === "string" ? entry.name : key,
        type: entry.type, start: start, end: end, status: status, error: error,
        depth: 1, index: runs.length, children: [], marks: this.marks[key] || null
      };
      if (typeof entry.id === "string" && !(entry.id in byId)) byId[entry.id] = run;
      runs.push(run);
    }
    var root = {
      key: null, entry: state, name: typeof state.name === "string" ? state.name : "(root)",
      type: state.type, start: t0, end: ended ? t1 : NaN, depth: 0, children: [], marks: null,
      error: state.error !== undefined && state.error !== null ? state.error : this.end && this.end.error,
      status: null
    };
    root.status = root.error !== undefined && root.error !== null ? "error" : ended ? "done" : over ? "unfinished" : "running";
    for (var r = 0; r < runs.length; r++) {
      var run2 = runs[r], parent = root, ids = run2.entry.parent_ids;
      if (Array.isArray(ids)) {
        for (var p = ids.length - 1; p >= 0; p--) {
          var cand = typeof ids[p] === "string" ? byId[ids[p]] : undefined;
          if (cand !== undefined && cand.index < run2.index) { parent = cand; break; }
        }
      }
      run2.depth = parent.depth + 1;
      parent.children.push(run2);
    }
    var rows = [];
    var stack = [root];
    while (stack.length) {
      var node = stack.pop();
      rows.push(node);
      for (var c = node.children.length - 1; c >= 0; c--) stack.push(node.children[c]);
    }
    if (!isFinite(t0)) { t0 = NaN; t1 = NaN; }
    return { rows: rows, t0: t0, t1: t1 };
  };

  // ---- drawing ---------------------------------------------------------------------------
  var STATUS_MARK = { done: "\u2713", error: "\u2716", running: "\u25b6", unfinished: "\u25cb" };
  var MAX_TICKS = 120;

  function streamedOf(entry) {
    for (var i = 0; i < STREAM_FIELDS.length; i++) {
      var items = entry[STREAM_FIELDS[i]];
      if (Array.isArray(items) && items.length) return { field: STREAM_FIELDS[i], items: items };
    }
    return null;
  }

  function tokenText(item) {
    if (typeof item === "string") return item;
    if (item && typeof item === "object") {
      if (typeof item.content === "string") return item.content;
      if (item.kwargs && typeof item.kwargs.content === "string") return item.kwargs.content;
    }
    return asJson(item, 0);
  }

  function View(log, data) {
    this.log = log;
    this.data = data;
    this.rowsEl = document.getElementById("rows");
    this.detailEl = document.getElementById("detail");
    this.current = [];
    this.offsets = null;
    this.drawn = null;
    this.selected = undefined; // a log key, or null for the root
    this.scroller = document.getElementById("waterfall");
    this.headEl = document.getElementById("head");
    var self = this, pending = false;
    this.scroller.addEventListener("scroll", function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; self.drawWindow(); });
    }, { passive: true });
    window.addEventListener("resize", function () { self.drawn = null; self.drawWindow(); });
    this.rowsEl.addEventListener("click", function (ev) {
      var target = ev.target;
      while (target && target !== self.rowsEl && !(target.dataset && target.dataset.index)) target = target.parentNode;
      if (!target || target === self.rowsEl) return;
      self.select(+target.dataset.index);
    });
    this.rowsEl.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      var target = ev.target;
      if (target && target.dataset && target.dataset.index) { ev.preventDefault(); self.select(+target.dataset.index); }
    });
  }

  // Rows are virtualized: every row has a fixed height (taller with a sub-line for an error
  // or streamed text), and only the rows in (or near) the scrolled-to window are in the DOM.
  var ROW_H = 27, SUB_H = 18, OVERSCAN = 30;

  View.prototype.render = function () {
    var model = this.log.rows();
    var rows = model.rows;
    var offsets = new Array(rows.length + 1);
    offsets[0] = 0;
    var selectedIndex = -1;
    for (var i = 0; i < rows.length; i++) {
      var run = rows[i];
      if (run.key === this.selected) selectedIndex = i;
      run.streamed = streamedOf(run.entry);
      run.hasError = run.error !== undefined && run.error !== null;
      offsets[i + 1] = offsets[i] + ROW_H + (run.hasError || run.streamed ? SUB_H : 0);
    }
    this.model = model;
    this.current = rows;
    this.offsets = offsets;
    this.rowsEl.style.height = offsets[rows.length] + "px";
    this.drawn = null;
    document.getElementById("axis-start").textContent = isNaN(model.t0) ? "" : "0";
    document.getElementById("axis-end").textContent = isNaN(model.t0) ? "" : formatMs(model.t1 - model.t0);
    this.summary(rows);
    this.drawWindow();
    if (selectedIndex >= 0) this.select(selectedIndex);
  };

  // Draws the rows that the scroll position shows, plus OVERSCAN on each side.
  View.prototype.drawWindow = function () {
    var rows = this.current, offsets = this.offsets, model = this.model;
    if (!offsets) return;
    var scroller = this.scroller, top = scroller.scrollTop - this.headEl.offsetHeight;
    var first = Math.max(0, findRow(offsets, top) - OVERSCAN);
    var last = Math.min(rows.length, findRow(offsets, top + scroller.clientHeight) + 1 + OVERSCAN);
    if (this.drawn && this.drawn[0] === first && this.drawn[1] === last) return;
    this.drawn = [first, last];
    var t0 = model.t0, span = Math.max(model.t1 - model.t0, 0.001), times = this.log.times;
    var frag = document.createDocumentFragment();
    for (var i = first; i < last; i++) {
      var rowEl = this.row(rows[i], i, t0, span, model.t1, times);
      rowEl.style.top = offsets[i] + "px";
      rowEl.style.height = (offsets[i + 1] - offsets[i]) + "px";
      if (rows[i].key === this.selected) rowEl.classList.add("selected");
      frag.appendChild(rowEl);
    }
    this.rowsEl.textContent = "";
    this.rowsEl.appendChild(frag);
  };

  // The index of the row at pixel y (the last row whose top is at or above y).
  function findRow(offsets, y) {
    var lo = 0, hi = offsets.length - 2;
    if (hi < 0) return 0;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= y) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  View.prototype.rowElement = function (index) {
    return this.rowsEl.querySelector('.row[data-index="' + index + '"]');
  };

  View.prototype.row = function (run, index, t0, span, t1, times) {
    var tc = typeClass(run.type);
    var row = el("div", "row");
    row.setAttribute("role", "listitem");
    row.tabIndex = 0;
    row.dataset.index = String(index);
    row.dataset.depth = String(run.depth);
    row.dataset.status = run.status;
    row.dataset.type = tc;
    var name = el("div", "name");
    name.style.paddingLeft = (run.depth * 14) + "px";
    name.appendChild(el("span", "label", safeText(run.name)));
    if (run.key !== null && run.key !== run.name) name.appendChild(el("span", "key", "[" + safeText(run.key) + "]"));
    row.appendChild(name);
    var type = el("div", "type");
    type.appendChild(el("span", "badge t-" + tc, typeof run.type === "string" ? safeText(run.type) : "?"));
    row.appendChild(type);
    var status = el("div", "status");
    status.appendChild(el("span", "marker", STATUS_MARK[run.status]));
    status.appendChild(document.createTextNode(run.status));
    row.appendChild(status);
    var hasEnd = !isNaN(run.end);
    row.appendChild(el("div", "dur", hasEnd && !isNaN(run.start) ? formatMs(run.end - run.start) : "-"));
    var track = el("div", "track");
    if (!isNaN(run.start) && !isNaN(t0)) {
      var stop = hasEnd ? run.end : t1;
      var bar = el("div", "bar b-" + tc);
      var left = (run.start - t0) / span * 100;
      bar.style.left = left.toFixed(3) + "%";
      bar.style.width = Math.max((stop - run.start) / span * 100, 0.25).toFixed(3) + "%";
      this.ticks(bar, run, times);
      track.appendChild(bar);
    }
    row.appendChild(track);
    var streamed = run.streamed, hasError = run.hasError;
    if (hasError || streamed) {
      var sub = el("div", "sub");
      sub.style.paddingLeft = (run.depth * 14 + 14) + "px";
      if (hasError) sub.appendChild(el("span", "err", "\u2716 " + shorten(safeText(run.error), 300)));
      if (hasError && streamed) sub.appendChild(document.createTextNode("  "));
      if (streamed) {
        var text = "";
        for (var k = 0; k < streamed.items.length && text.length < 400; k++) text += tokenText(streamed.items[k]);
        sub.appendChild(el("span", "stream", shorten(safeText(text), 300)));
      }
      row.appendChild(sub);
    }
    return row;
  };

  // Token ticks on a bar: where each token came between the run's start and end patches.
  View.prototype.ticks = function (bar, run, times) {
    var m = run.marks, streamed = streamedOf(run.entry);
    if (!m || !streamed || m.start === null) return;
    var seqs = m.tokens[streamed.field];
    if (!seqs.length) return;
    var last = m.end !== null ? m.end : this.log.seq;
    var from = position(m.start, times), to = position(last, times);
    if (!(to > from)) return;
    var n = seqs.length, step = Math.max(1, Math.ceil(n / MAX_TICKS));
    for (var i = 0; i < n; i += step) {
      var at = (position(seqs[i], times) - from) / (to - from) * 100;
      var tick = el("div", "tick");
      tick.style.left = Math.min(Math.max(at, 0), 100).toFixed(2) + "%";
      bar.appendChild(tick);
    }
  };

  // A patch's place on a time line: its arrival time when known, else its number.
  function position(seq, times) {
    var t = times[seq - 1];
    return typeof t === "number" && allTimed(times) ? t : seq;
  }

  function allTimed(times) {
    return times.length > 0 && typeof times[0] === "number";
  }

  View.prototype.summary = function (rows) {
    var log = this.log, el2 = document.getElementById("summary");
    // The run's patches: the end record's count, else the last position seen (a page that
    // joined late got one snapshot frame for all the patches before it), else those applied.
    var count = log.end !== null && typeof log.end.patches === "number" ? log.end.patches
      : log.position > 0 ? log.position : log.seq;
    var parts = [rows.length ? rows.length - 1 + " logged run" + (rows.length === 2 ? "" : "s") : "no runs yet",
      count + " patch" + (count === 1 ? "" : "es")];
    var failed = 0;
    for (var i = 1; i < rows.length; i++) if (rows[i].status === "error") failed++;
    if (failed) parts.push(failed + " failed");
    var rootError = rows.length ? rows[0].error : log.end !== null ? log.end.error : null;
    if (log.end !== null) {
      if (rootError !== undefined && rootError !== null) parts.push("the run raised " + shorten(safeText(rootError), 300));
      else parts.push("complete");
    } else if (!this.data.live) {
      parts.push("incomplete: the recording has no end record (unfinished runs are shown as such)");
    }
    el2.textContent = parts.join(" \u00b7 ");
    el2.className = rootError !== undefined && rootError !== null ? "error" : "";
  };

  View.prototype.select = function (index) {
    var run = this.current[index];
    if (!run) return;
    this.selected = run.key;
    var old = this.rowsEl.querySelector(".row.selected");
    if (old) old.classList.remove("selected");
    var rowEl = this.rowElement(index);
    if (rowEl) rowEl.classList.add("selected");
    this.detail(run);
  };

  View.prototype.detail = function (run) {
    var d = this.detailEl, e = run.entry;
    d.textContent = "";
    d.appendChild(el("h2", null, safeText(run.name)));
    var dl = el("dl");
    function item(label, value) {
      if (value === undefined || value === null || value === "") return;
      dl.appendChild(el("dt", null, label));
      dl.appendChild(el("dd", null, typeof value === "string" ? value : safeText(value)));
    }
    item("log key", run.key === null ? "(the root run)" : safeText(run.key));
    item("type", typeof run.type === "string" ? safeText(run.type) : undefined);
    item("status", run.status);
    item("id", e.id !== undefined ? safeText(e.id) : undefined);
    item("started", typeof e.start_time === "string" ? safeText(e.start_time) : undefined);
    item("ended", typeof e.end_time === "string" ? safeText(e.end_time) : undefined);
    if (!isNaN(run.start) && !isNaN(run.end) && run.key !== null) item("duration", formatMs(run.end - run.start));
    if (Array.isArray(e.parent_ids)) item("parent ids", safeText(e.parent_ids.join(" > ")));
    d.appendChild(dl);
    if (run.error !== undefined && run.error !== null) {
      d.appendChild(el("h3", null, "error"));
      d.appendChild(el("pre", "error-text", safeText(run.error)));
    }
    var streamed = streamedOf(e);
    if (streamed) this.tokens(d, run, streamed);
    var sections = run.key === null
      ? [["final output", e.final_output]]
      : [["inputs", e.inputs], ["outputs", e.final_output], ["tags", e.tags], ["metadata", e.metadata]];
    for (var i = 0; i < sections.length; i++) {
      if (sections[i][1] === undefined) continue;
      d.appendChild(el("h3", null, sections[i][0]));
      d.appendChild(el("pre", null, safeText(asJson(sections[i][1], 2))));
    }
  };

  View.prototype.tokens = function (d, run, streamed) {
    var times = this.log.times, m = run.marks;
    var seqs = m ? m.tokens[streamed.field] : [];
    var known = m !== null && m.start !== null && seqs.length === streamed.items.length;
    var timed = known && allTimed(times);
    var ordinal = known && !timed;
    d.appendChild(el("h3", null, streamed.items.length + " streamed " + (streamed.field === "streamed_output_str" ? "tokens" : "chunks")
      + (timed ? " (ms after the run started)" : ordinal ? " (patch number after the run's first)" : "")));
    var box = el("div", "tokens");
    var limit = Math.min(streamed.items.length, 2000);
    for (var i = 0; i < limit; i++) {
      var tok = el("span", "token", safeText(tokenText(streamed.items[i])));
      if (timed) tok.appendChild(el("span", "when", "+" + formatMs(times[seqs[i] - 1] - times[m.start - 1])));
      else if (ordinal) tok.appendChild(el("span", "when", "#" + (seqs[i] - m.start)));
      box.appendChild(tok);
    }
    if (limit < streamed.items.length) box.appendChild(el("span", "hint", "\u2026 " + (streamed.items.length - limit) + " more"));
    d.appendChild(box);
  };

  function legend() {
    var box = document.getElementById("legend");
    var names = Object.keys(TYPES).concat(["other"]);
    for (var i = 0; i < names.length; i++) box.appendChild(el("span", "badge t-" + names[i], names[i]));
  }

  // ---- live: the resumable SSE stream ------------------------------------------------------
  function Live(log, view, config) {
    this.log = log;
    this.view = view;
    this.url = config.stream;
    this.source = null;
    this.lastEventId = "";
    this.pending = false;
    this.statusEl = document.getElementById("live-status");
    this.statusEl.hidden = false;
    // the server's note while the run is not there yet (no file, no log): shown until a patch
    this.waiting = typeof config.waiting === "string" ? config.waiting : null;
  }

  Live.prototype.status = function (state, text) {
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = text;
  };

  Live.prototype.connect = function () {
    var self = this;
    if (this.source) this.source.close();
    var url = this.url;
    if (this.lastEventId) {  // resume exactly after the last frame applied
      url += (url.indexOf("?") >= 0 ? "&" : "?") + "last_event_id=" + encodeURIComponent(this.lastEventId);
    }
    var es = new EventSource(url);
    this.source = es;
    this.status("connecting", "connecting\u2026");
    es.onopen = function () {
      if (self.log.end !== null) return;
      if (self.waiting !== null) self.status("waiting", self.waiting);
      else self.status("live", "live");
    };
    es.addEventListener("data", function (ev) { self.onData(ev); });
    es.addEventListener("end", function (ev) { self.onEnd(ev); });
    es.addEventListener("error", function (ev) { self.onError(ev); });
  };

  Live.prototype.disconnect = function () {
    if (this.source) { this.source.close(); this.source = null; }
    this.status("reconnecting", "disconnected");
  };

  Live.prototype.onData = function (ev) {
    var msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return this.fail("a frame that is not JSON"); }
    if (!msg || !Array.isArray(msg.ops)) return this.fail("a frame without ops");
    try {
      this.log.apply(msg.ops, Date.now());
    } catch (e) {
      return this.resync(e && e.message ? e.message : "a patch that does not apply");
    }
    this.lastEventId = ev.lastEventId;
    var position = Number(String(ev.lastEventId).split(":").pop());
    if (position > 0) this.log.position = position;
    if (this.waiting !== null && position > 0) {
      this.waiting = null;  // the run's first patch: it is there now
      this.status("live", "live");
    }
    this.schedule();
  };

  Live.prototype.onEnd = function (ev) {
    var msg = null;
    try { msg = JSON.parse(ev.data); } catch (e) { msg = {}; }
    this.log.end = { patches: msg.patches, error: typeof msg.error === "string" ? msg.error : null };
    this.lastEventId = ev.lastEventId;
    if (this.source) { this.source.close(); this.source = null; }
    this.status("ended", "the run ended");
    this.view.render();  // at once: a page that says it ended shows the end
  };

  Live.prototype.onError = function (ev) {
    if (typeof ev.data === "string" && ev.data) {
      // the server refused the resume point (foreign, stale, future) or failed: start over
      var why = "the server refused to resume";
      try { var msg = JSON.parse(ev.data); if (msg && typeof msg.error === "string") why = msg.error; } catch (e) { /* keep */ }
      return this.resync(why);
    }
    if (this.log.end !== null) return;
    if (this.source && this.source.readyState === EventSource.CLOSED) {
      this.status("reconnecting", "connection lost; reconnecting\u2026");
      var self = this;
      setTimeout(function () { if (self.log.end === null) self.connect(); }, 1000);
    } else {
      this.status("reconnecting", "connection lost; reconnecting\u2026");
    }
  };

  // Starts over from a fresh snapshot (a new EventSource sends no Last-Event-ID).
  Live.prototype.resync = function (why) {
    if (this.source) { this.source.close(); this.source = null; }
    this.lastEventId = "";
    this.status("reconnecting", "resyncing (" + safeText(String(why)) + ")");
    var self = this;
    setTimeout(function () { self.connect(); }, 300);
  };

  Live.prototype.fail = function (why) {
    this.resync(why);
  };

  Live.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    var self = this;
    setTimeout(function () { self.pending = false; self.view.render(); }, 50);
  };

  // ---- start -----------------------------------------------------------------------------
  var data = JSON.parse(document.getElementById("logstream-data").textContent);
  document.getElementById("run-title").textContent = safeText(String(data.source || ""));
  legend();
  var log = new Log(Boolean(data.live));
  var failure = null;
  var patches = data.patches || [], times = data.times || [];
  for (var i = 0; i < patches.length; i++) {
    try {
      log.apply(patches[i], typeof times[i] === "number" ? times[i] * 1000 : undefined);
    } catch (e) {
      failure = "patch " + (i + 1) + " does not apply: " + (e && e.message ? e.message : String(e));
      break;
    }
  }
  if (data.end) log.end = { patches: data.end.patches, error: data.end.error };
  var view = new View(log, data);
  view.render();
  if (failure) {
    var s = document.getElementById("summary");
    s.textContent = safeText(failure);
    s.className = "error";
  }
  var live = data.live ? new Live(log, view, data.live) : null;
  if (live) live.connect();
  window.__logstream = {
    state: function () { return log.state; },
    patches: function () { return log.seq; },
    snapshots: function () { return log.snapshots; },
    ended: function () { return log.end !== null; },
    rows: function () { return view.current.length; },
    scrollTo: function (index) { view.scroller.scrollTop = view.offsets[index] || 0; view.drawWindow(); },
    lastEventId: function () { return live ? live.lastEventId : ""; },
    disconnect: function () { if (live) live.disconnect(); },
    reconnect: function (resumeId) {  // resumeId: resume from there instead (tests)
      if (!live) return;
      if (typeof resumeId === "string") live.lastEventId = resumeId;
      live.connect();
    },
    render: function () { view.render(); },
    applyPatch: applyPatch
  };
  document.documentElement.dataset.ready = "1";
})();
