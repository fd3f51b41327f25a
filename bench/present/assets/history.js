(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("history-data").textContent);
  const P = D.points, C = D.configs, R = D.runs, dims = D.dimensions;
  const esc = s => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const fmt = v => (v == null ? "" : Number(v).toPrecision(4));
  const byConfig = Array.from({length: D.config_count}, () => []);
  for (let i = 0; i < P.run.length; i++) byConfig[P.config[i]].push(i);
  const state = {config: 0, phase: Math.max(0, D.phases.indexOf(D.default_phase)),
                 reference: -1};
  const selects = {};
  let draws = 0;

  function median(values) {
    const s = values.slice().sort((a, b) => a - b), m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  // The configuration with every chosen value; where there is none, the one that keeps the
  // value just chosen and most of the others (earlier controls first).
  function pick(changed, wanted) {
    let best = state.config, bestScore = -1;
    for (let c = 0; c < D.config_count; c++) {
      let count = 0, order = 0, keeps = true;
      dims.forEach((d, i) => {
        const same = C[d.name][c] === wanted[i];
        if (i === changed && !same) keeps = false;
        if (same) { count += 1; order += 1 << (dims.length - i); }
      });
      const score = count * (1 << (dims.length + 1)) + order;
      if (keeps && score > bestScore) { best = c; bestScore = score; }
    }
    return best;
  }

  function control(parent, id, label, options, value, onchange) {
    const wrap = document.createElement("label");
    wrap.className = "control";
    wrap.appendChild(document.createTextNode(label + " "));
    const select = document.createElement("select");
    select.id = id;
    options.forEach(([v, text]) => {
      const option = document.createElement("option");
      option.value = String(v);
      option.textContent = text;
      select.appendChild(option);
    });
    select.value = String(value);
    select.addEventListener("change", () => onchange(Number(select.value)));
    wrap.appendChild(select);
    parent.appendChild(wrap);
    return select;
  }

  function buildControls() {
    const box = document.getElementById("controls");
    const fixed = [];
    dims.forEach((d, i) => {
      if (d.values.length < 2) {
        if (d.labels.length) fixed.push(d.labels[0]);
        return;
      }
      selects[d.name] = control(box, "pick-" + d.name, d.name.replace(/_/g, " "),
        d.labels.map((text, v) => [v, text]), C[d.name][state.config], v => {
          const wanted = dims.map(e => C[e.name][state.config]);
          wanted[i] = v;
          state.config = pick(i, wanted);
          draw();
        });
    });
    control(box, "pick-phase", "phase", D.phases.map((p, i) => [i, p]), state.phase, v => {
      state.phase = v;
      draw();
    });
    const mode = document.getElementById("matrix-controls");
    control(mode, "matrix-mode", "show", [[-1, "median time (ms)"],
      ...D.versions.map((v, i) => [i, "ratio to torch " + v])], -1, v => {
      state.reference = v;
      draw();
    });
    document.getElementById("fixed").textContent = fixed.length
      ? "Every run has: " + fixed.join(" · ") + "." : "";
  }

  function chosen() {
    return byConfig[state.config].filter(i => P.phase[i] === state.phase)
      .sort((a, b) => P.run[a] - P.run[b]);
  }

  function errorBars(ids) {
    return {type: "data", symmetric: false, thickness: 1.2, width: 4,
            array: ids.map(i => (P.high[i] == null ? null : P.high[i] - P.median[i])),
            arrayminus: ids.map(i => (P.low[i] == null ? null : P.median[i] - P.low[i]))};
  }

  function hover(i) {
    const r = P.run[i];
    const interval = P.low[i] == null ? "" : " [" + fmt(P.low[i]) + ", " + fmt(P.high[i]) + "]";
    return [esc("run " + R.id[r] + " on " + D.machines[R.machine[r]]),
            esc(D.devices[P.device_name[i]] + " · torch " + D.versions[R.version[r]] + " · " + R.date[r]),
            esc("median " + fmt(P.median[i]) + " ms" + interval)].join("<br>");
  }

  function changeTrace(ids, x) {
    if (!D.changes) return null;
    const where = new Map(ids.map(i => [i, true]));
    const found = D.changes.point.map((p, k) => [p, k]).filter(([p]) => where.has(p));
    if (!found.length) return null;
    return {type: "scatter", mode: "markers", name: "change", x: found.map(([p]) => x(p)),
            y: found.map(([p]) => P.median[p]),
            marker: {size: 15, color: found.map(([, k]) => (D.changes.ratio[k] > 1 ? "#c62828" : "#1565c0")),
                     symbol: found.map(([, k]) => (D.changes.ratio[k] > 1 ? "triangle-up" : "triangle-down"))},
            text: found.map(([p, k]) => {
              const before = D.changes.before[k];
              return esc(D.changes.direction[k] + ": x" + fmt(D.changes.ratio[k])
                + (before >= 0 ? " against run " + R.id[before] : "")) + "<br>"
                + esc(D.changes.attributed[k] ? "attributed to " + D.changes.attributed[k] : "");
            }),
            hovertemplate: "%{text}<extra></extra>"};
  }

  function layout(title, xtitle, categories) {
    return {title: {text: esc(title)}, template: "plotly_white", height: 460,
            hovermode: "closest",
            xaxis: {type: "category", title: {text: xtitle}, categoryorder: "array",
                    categoryarray: categories, automargin: true},
            yaxis: {title: {text: "ms"}, rangemode: "tozero"}};
  }

  function versionsChart(ids) {
    const traces = [];
    D.devices.forEach((name, d) => {
      const mine = ids.filter(i => P.device_name[i] === d);
      if (!mine.length) return;
      traces.push({type: "scatter", mode: "lines+markers", name: esc(name),
                   x: mine.map(i => esc(R.label[P.run[i]])), y: mine.map(i => P.median[i]),
                   error_y: errorBars(mine), text: mine.map(hover),
                   hovertemplate: "%{text}<extra></extra>"});
    });
    const marks = changeTrace(ids, i => esc(R.label[P.run[i]]));
    if (marks) traces.push(marks);
    const categories = [...new Set(ids.map(i => esc(R.label[P.run[i]])))];
    return Plotly.react("versions-chart", traces,
      layout("Across torch versions, by version then date", "torch version · date", categories),
      {displaylogo: false, responsive: true});
  }

  function devicesChart(ids) {
    const traces = [];
    D.versions.forEach((version, v) => {
      const mine = ids.filter(i => R.version[P.run[i]] === v);
      if (!mine.length) return;
      traces.push({type: "scatter", mode: "markers", name: esc("torch " + version),
                   x: mine.map(i => esc(D.devices[P.device_name[i]])), y: mine.map(i => P.median[i]),
                   error_y: errorBars(mine), text: mine.map(hover),
                   hovertemplate: "%{text}<extra></extra>"});
    });
    const categories = D.devices.filter((_, d) => ids.some(i => P.device_name[i] === d)).map(esc);
    return Plotly.react("devices-chart", traces,
      layout("Across devices, a point per run", "device", categories),
      {displaylogo: false, responsive: true});
  }

  function cell(row, text, css, title) {
    const td = document.createElement(row.parentNode && row.parentNode.tagName === "THEAD" ? "th" : "td");
    td.textContent = text;
    if (css) td.className = css;
    if (title) td.title = title;
    row.appendChild(td);
    return td;
  }

  function matrix(ids) {
    const cells = new Map();
    ids.forEach(i => {
      const key = P.device_name[i] + "|" + R.version[P.run[i]];
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(P.median[i]);
    });
    const devices = D.devices.map((_, d) => d)
      .filter(d => D.versions.some((_, v) => cells.has(d + "|" + v)));
    const versions = D.versions.map((_, v) => v)
      .filter(v => devices.some(d => cells.has(d + "|" + v)));
    const table = document.getElementById("matrix");
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    cell(head, "device", "", "");
    versions.forEach(v => cell(head, "torch " + D.versions[v], "", ""));
    const body = table.createTBody();
    devices.forEach(d => {
      const row = body.insertRow();
      cell(row, D.devices[d], "", "");
      const reference = cells.get(d + "|" + state.reference);
      versions.forEach(v => {
        const values = cells.get(d + "|" + v);
        if (!values) { cell(row, "", "num", "not measured"); return; }
        const ms = median(values);
        const runs = values.length + " run(s)";
        if (state.reference < 0) { cell(row, fmt(ms), "num", runs); return; }
        if (!reference) { cell(row, "", "num", "no run with the reference version"); return; }
        const ratio = ms / median(reference);
        const td = cell(row, ratio.toFixed(3), "num", fmt(ms) + " ms, " + runs);
        const strength = Math.min(Math.abs(Math.log2(ratio)), 1);
        td.style.background = ratio > 1 ? "rgba(198,40,40," + strength + ")"
          : "rgba(21,101,192," + strength + ")";
      });
    });
  }

  function describe() {
    return dims.filter(d => d.values.length > 1).map(d => d.labels[C[d.name][state.config]])
      .concat(["phase " + D.phases[state.phase]]).join(" · ");
  }

  function draw() {
    dims.forEach(d => {
      if (selects[d.name]) selects[d.name].value = String(C[d.name][state.config]);
    });
    const ids = chosen();
    document.getElementById("chosen").textContent = describe() + ": " + ids.length
      + " measurement(s) in " + new Set(ids.map(i => P.run[i])).size + " run(s).";
    document.getElementById("matrix-chosen").textContent = describe() + ".";
    matrix(ids);
    Promise.all([versionsChart(ids), devicesChart(ids)]).then(() => {
      draws += 1;
      document.body.dataset.draws = String(draws);
    });
  }

  buildControls();
  draw();
})();
