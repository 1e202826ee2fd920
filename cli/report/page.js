// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * pyleakctl report: draws the page from the snapshot pyleakctl put in #pyleak-data, with
 * Chart.js (inlined before this script). Text goes in with textContent only: type names, files
 * and functions are the traced program's.
 */
(function () {
	'use strict';

	const CHARTED = 8;	/* largest types charted (pyleakctl keeps their histories) */
	const TYPES_LISTED = 25;
	const SITES_LISTED = 8;
	const FLAME_DEPTH = 40;
	const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00', '#0a7f8c',
		'#bf3989', '#6e7781', '#9a6700', '#2f4f9f'];

	const nf = new Intl.NumberFormat('en-US');
	const num = (v) => (typeof v === 'number' ? nf.format(Math.round(v)) : '–');
	const signed = (v) => (typeof v === 'number' ? (v > 0 ? '+' : '') + num(v) : '–');
	const fixed = (v, d) => (typeof v === 'number' ? v.toFixed(d) : '–');
	const percent = (v) => (typeof v === 'number' ? Math.round(v * 100) + '%' : '–');
	const frameText = (f) => (f ? (f.function || '?') + ' (' + (f.file || '?') + ':' + (f.line ?? '?') + ')' : '–');

	function bytes(v) {
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let i = 0;

		if (typeof v !== 'number' || v < 0)
			return '–';
		while (v >= 1024 && i < units.length - 1) {
			v /= 1024;
			i++;
		}
		return (i ? v.toFixed(1) : String(v)) + ' ' + units[i];
	}

	function clock(epoch) {
		return new Date(epoch * 1000).toLocaleTimeString('en-GB', { hour12: false });
	}

	/* Local time as the CLI prints it, then UTC. */
	function when(epoch) {
		if (typeof epoch !== 'number')
			return '–';
		const d = new Date(epoch * 1000);
		const p = (n) => String(n).padStart(2, '0');
		return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + clock(epoch) +
			' (' + d.toISOString().replace(/\.\d+Z$/, 'Z') + ')';
	}

	function duration(s) {
		if (typeof s !== 'number')
			return '–';
		if (s < 120)
			return Math.round(s) + ' s';
		if (s < 7200)
			return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
		return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
	}

	/* el('td', {class: 'n'}, 'text', child...): attributes, then text or element children. */
	function el(tag, attrs, ...kids) {
		const e = document.createElement(tag);

		for (const [k, v] of Object.entries(attrs || {})) {
			if (k === 'class')
				e.className = v;
			else if (k === 'style')
				Object.assign(e.style, v);
			else
				e.setAttribute(k, v);
		}
		for (const kid of kids.flat(Infinity)) {
			if (kid !== null && kid !== undefined && kid !== false)
				e.append(kid instanceof Node ? kid : String(kid));
		}
		return e;
	}

	function table(headers, rows) {
		return el('table', {},
			el('thead', {}, el('tr', {}, headers.map(([h, cls]) => el('th', cls ? { class: cls } : {}, h)))),
			el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) =>
				el('td', headers[i][1] ? { class: headers[i][1] } : {}, c))))));
	}

	/* ---- the charts ---- */

	let chartsDrawn = 0;
	/* After a chart's first render its box says how many series it drew: what a test reads. */
	const drawnMark = {
		id: 'pyleakDrawn',
		afterRender(chart) {
			const box = chart.canvas.closest('.chart');

			if (!box.dataset.chartDrawn)
				document.body.dataset.chartsDrawn = String(++chartsDrawn);
			box.dataset.chartDrawn = String(chart.data.datasets.length);
		},
	};

	/* log: a logarithmic scale where every value is positive (one type may be 1000 times another). */
	function lineChart(title, subtitle, rows, time, log) {
		const box = el('div', { class: 'box' }, el('canvas', { role: 'img', 'aria-label': title }));
		const note = el('p', { class: 'muted' }, subtitle);
		const section = el('div', { class: 'chart' }, el('h3', {}, title), note, box);
		const datasets = rows.filter((r) => (r.history || []).length).map((r, i) => ({
			label: r.type,
			data: r.history.map(([ms, v]) => ({ x: ms / 1000, y: v })),
			borderColor: COLORS[i % COLORS.length],
			backgroundColor: COLORS[i % COLORS.length],
			borderWidth: 2,
			pointRadius: 0,
			tension: 0,
		}));

		log = log && datasets.every((d) => d.data.every((p) => p.y > 0));
		if (log)
			note.textContent += ' Logarithmic scale.';
		if (!datasets.length) {
			box.replaceChildren(el('p', { class: 'empty' }, 'No samples yet: the daemon samples every few seconds after attach.'));
			return section;
		}
		/* Drawn once the section is in the document, which gives the canvas its size. */
		section.draw = () => new Chart(box.querySelector('canvas'), {
			type: 'line',
			data: { datasets },
			plugins: [drawnMark],
			options: {
				animation: false,
				responsive: true,
				maintainAspectRatio: false,
				parsing: false,
				interaction: { mode: 'nearest', axis: 'x', intersect: false },
				scales: {
					x: {
						type: 'linear',
						title: { display: true, text: 'time' },
						ticks: { maxTicksLimit: 7, callback: (v) => clock(time + v) },
					},
					y: {
						type: log ? 'logarithmic' : 'linear',
						title: { display: true, text: 'objects' },
						/* On a log scale only powers of ten: 1-2-5 labels would overlap. */
						ticks: { callback: (v) => (!log || Number.isInteger(Math.log10(v)) ? num(v) : null) },
					},
				},
				plugins: {
					legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 2 } },
					tooltip: {
						callbacks: {
							title: (items) => clock(time + items[0].parsed.x),
							label: (item) => item.dataset.label + ': ' + num(item.parsed.y),
						},
					},
				},
			},
		});
		return section;
	}

	/* ---- the flame graph: nested blocks, callers on top, width = share of live objects ---- */

	function flameTree(sites) {
		const root = { label: 'all sampled sites', value: 0, kids: new Map() };

		for (const s of sites) {
			const frames = (s.stack && s.stack.length ? s.stack : [s]).slice().reverse();
			let node = root;

			root.value += s.live || 0;
			for (const f of frames.slice(0, FLAME_DEPTH)) {
				const key = frameText(f);

				if (!node.kids.has(key))
					node.kids.set(key, { label: key, fn: f.function || '?', value: 0, kids: new Map() });
				node = node.kids.get(key);
				node.value += s.live || 0;
			}
		}
		return root;
	}

	function flameColor(name) {
		let h = 0;

		for (const c of name)
			h = (h * 31 + c.codePointAt(0)) >>> 0;
		return 'hsl(' + (10 + h % 45) + ', 85%, ' + (62 + h % 14) + '%)';
	}

	function flameNode(node, total, width) {
		const share = total ? node.value / total : 0;
		const bar = el('div', {
			class: 'fbar',
			title: node.label + '\n' + num(node.value) + ' live objects (' + (share * 100).toFixed(1) + '%)',
			style: { background: node.fn ? flameColor(node.fn) : '#d0d7de' },
		}, node.label);
		const kids = el('div', { class: 'fkids' });

		for (const kid of [...node.kids.values()].sort((a, b) => b.value - a.value)) {
			if (node.value && kid.value / total >= 0.002)
				kids.append(flameNode(kid, total, (100 * kid.value) / node.value));
		}
		return el('div', { class: 'fnode', style: { width: width + '%' } }, bar, kids);
	}

	/* ---- the sections ---- */

	function header(data, top, leaks) {
		const mode = data.mode || top.mode;
		const meta = [
			['Process', 'pid ' + data.pid], ['Host', data.host || '–'],
			['Executable', data.exe || '–'], ['Python', data.python || '–'],
			['Mode', mode || '–'], ['Taken at', when(data.time)],
			['Tracked since', when(top.since)], ['Leak window', duration(leaks.window_s) +
				(leaks.sample_interval_s ? ', a sample every ' + leaks.sample_interval_s + ' s' : '')],
		];
		const explain = [
			mode === 'sampled' ?
				'Sampled mode: a census of the heap, read from outside the process, counts every live object of each type; allocation sites come from sampled heap pages.' :
				'Precise mode: probes in the interpreter count the objects of each type born since attach and still alive; the types named below are counted by a census of the heap instead.',
			'The charts plot what the leak score follows: the live count for census-counted types, the change in population since attach (births minus every death seen) for probe-counted ones.',
			'A suspect is a type whose count kept rising over the leak window (its floors rose, not just its peaks), or that only dies in cyclic-GC collections.',
		].concat(top.notes || []);

		return [
			el('h1', {}, 'pyleak report: pid ' + data.pid),
			el('p', { class: 'muted mono' }, data.exe || ''),
			el('dl', { class: 'meta' }, meta.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
			el('div', { class: 'explain' }, el('strong', {}, 'What the counts mean'),
				el('ul', {}, explain.map((t) => el('li', {}, t)))),
		];
	}

	function gcTotals(gc) {
		let runs = 0, ms = 0;

		for (const g of Object.values(gc || {})) {
			runs += g.runs || 0;
			ms += g.total_ms || 0;
		}
		return { runs, ms };
	}

	function cards(suspects, top) {
		const first = suspects[0];
		const gc = gcTotals(top.gc);
		const card = (k, v) => el('div', { class: 'card' }, el('div', { class: 'v' }, v), el('div', { class: 'k' }, k));

		return el('div', { class: 'cards' },
			card('leak suspects', num(suspects.length)),
			card('first suspect', first ? first.type : 'none'),
			card('its growth per minute', first ? signed(first.growth_per_min) : '–'),
			card('its live objects', first ? num(first.live) : '–'),
			card('GC collections since attach', num(gc.runs) + ' (' + fixed(gc.ms, 1) + ' ms)'));
	}

	function stackList(stack) {
		return el('ol', { class: 'stack mono' }, (stack || []).map((f, i) =>
			el('li', {}, (i ? 'called from ' : 'at ') + frameText(f))));
	}

	function sitesTable(sites) {
		if (!sites.length)
			return el('p', { class: 'empty' }, 'No allocation sites for this type (none sampled yet, or the interpreter\'s stacks cannot be read).');
		return table([['function'], ['where'], ['live', 'n'], ['called from']],
			sites.slice(0, SITES_LISTED).map((s) => [
				el('span', { class: 'mono' }, s.function || '?'),
				el('span', { class: 'mono site' }, (s.file || '?') + ':' + (s.line ?? '?')),
				num(s.live),
				el('span', { class: 'mono muted' }, (s.stack || []).slice(1, 4).map(frameText).join(' ← ') || '–'),
			]));
	}

	function holder(h) {
		if (!h)
			return el('p', { class: 'empty' }, 'No container found holding the growth (looked for once a type is judged growing).');
		return [
			el('p', {}, 'A ', el('strong', {}, h.container || '?'), ' at ', el('code', {}, h.address || '?'),
				' holding ' + num(h.length) + ' items, ' + signed(h.growth) + ' in the window.'),
			h.grown_at ? [el('p', {}, 'Grown at ', el('code', { class: 'grown-at' }, frameText(h.grown_at)),
				h.grown_at.pages ? el('span', { class: 'muted' }, ' (' + num(h.grown_at.pages) + ' sampled pages of its items)') : null),
			stackList(h.grown_at.stack)] : el('p', { class: 'muted' }, 'Where it grows is not known.'),
		];
	}

	function retentionPath(path) {
		if (!path)
			return null;
		const text = path.text || (path.steps || []).map((s) => s.name || s.kind).join(' → ');

		return [el('h4', {}, 'Retention path'),
			el('p', { class: 'mono path' }, (path.root ? path.root + ' → ' : '') + text),
			path.objects ? el('p', { class: 'muted' }, num(path.objects) + ' objects reached this way') : null];
	}

	function suspectBlock(s, rank, sitesReply) {
		const sites = sitesReply && sitesReply.sites && sitesReply.sites.length ? sitesReply.sites : (s.sites || []);

		return el('div', { class: 'suspect' + (s.score < 0.5 ? ' low' : ''), 'data-type': s.type },
			el('div', { class: 'head' },
				el('span', { class: 'muted' }, '#' + rank),
				el('span', { class: 'type mono' }, s.type),
				el('span', { class: 'badge' }, s.class ? 'class' : 'built-in type'),
				el('span', { class: 'badge' }, 'counted by ' + (s.source || '?')),
				el('span', { class: 'muted' }, 'score ',
					el('span', { class: 'score' }, el('span', { style: { width: Math.round((s.score || 0) * 100) + '%' } })),
					' ' + fixed(s.score, 2))),
			table([['live', 'n'], ['growth', 'n'], ['per minute', 'n'], ['samples', 'n'], ['over', 'n'], ['freed by cyclic GC', 'n']],
				[[num(s.live), signed(s.growth), signed(s.growth_per_min), num(s.samples), duration(s.span_s),
					percent(s.freed_by_gc_fraction)]]),
			el('p', { class: 'evidence' }, el('strong', {}, 'Evidence: '), s.evidence || '–'),
			el('h4', {}, 'What holds it'), holder(s.held_by),
			retentionPath(s.path),
			el('h4', {}, 'Where they were allocated'), sitesTable(sites));
	}

	function flameSection(suspects, sitesByType) {
		const first = suspects.find((s) => ((sitesByType[s.type] || {}).sites || []).length);
		const out = [el('h2', {}, 'Flame graph' + (first ? ': where the live ' + first.type + ' objects were allocated' : ''))];

		if (!first) {
			out.push(el('p', { class: 'empty' }, 'No allocation stacks for the suspects.'));
			return out;
		}
		const reply = sitesByType[first.type];
		const root = flameTree(reply.sites);
		out.push(el('p', { class: 'muted' }, 'Callers on top, callees below; a block\'s width is its share of the ' +
			num(root.value) + ' live objects its sites stand for. Hover a block for its count.'),
		reply.sampled ? el('p', { class: 'muted' }, reply.sampled) : null,
		el('div', { class: 'flame', id: 'flame' }, flameNode(root, root.value, 100)));
		return out;
	}

	function typesTable(types) {
		return table([['type'], ['live', 'n'], ['bytes', 'n'], ['change', 'n'], ['counted by']],
			types.slice(0, TYPES_LISTED).map((t) => [el('span', { class: 'mono' }, t.type), num(t.live),
				bytes(t.bytes), signed(t.delta), t.source || '–']));
	}

	function gcSection(gc) {
		const gens = Object.entries(gc || {});
		const out = [el('h2', {}, 'Garbage collector')];

		if (!gens.length) {
			out.push(el('p', { class: 'empty' }, 'No cyclic-GC collections seen since attach.'));
			return out;
		}
		out.push(el('p', { class: 'muted' }, 'Cyclic-GC collections since attach, per generation: a generation\'s runs collect it and the younger ones.'),
			el('div', { id: 'gc' }, table([['generation'], ['runs', 'n'], ['total ms', 'n'], ['max ms', 'n'], ['mean ms', 'n'], ['collected', 'n']],
				gens.map(([g, v]) => [g, num(v.runs), fixed(v.total_ms, 2), fixed(v.max_ms, 2),
					v.runs ? fixed(v.total_ms / v.runs, 3) : '–', num(v.collected)]))));
		return out;
	}

	function notesSection(leaks, sitesByType) {
		const notes = (leaks.notes || []).slice();

		for (const [type, reply] of Object.entries(sitesByType)) {
			if (reply && reply.error)
				notes.push('sites of ' + type + ': ' + reply.error.message);
		}
		return notes.length ? [el('h2', {}, 'Notes'), el('ul', {}, notes.map((n) => el('li', {}, n)))] : [];
	}

	function render() {
		const data = JSON.parse(document.getElementById('pyleak-data').textContent);
		const app = document.getElementById('app');
		const top = data.top || {}, leaks = data.leaks || {}, sitesByType = data.sites || {};
		const suspects = leaks.suspects || [];
		const types = top.types || [];
		const byType = new Map(types.map((t) => [t.type, t]));
		const charts = [
			lineChart('Suspects', 'Leak suspects, most likely first.',
				suspects.map((s) => byType.get(s.type)).filter(Boolean), data.time),
			lineChart('Largest types', 'The ' + Math.min(CHARTED, types.length) + ' types with the most live objects.',
				types.slice(0, CHARTED), data.time, true),
		];

		document.title = 'pyleak report: pid ' + data.pid + (suspects.length ? ', ' + suspects[0].type + ' leaking' : '');
		app.append(...header(data, top, leaks), cards(suspects, top),
			el('h2', {}, 'Live objects over time'), el('div', { class: 'charts' }, charts),
			el('h2', {}, 'Leak suspects'),
			...(suspects.length ? suspects.map((s, i) => suspectBlock(s, i + 1, sitesByType[s.type])) :
				[el('p', { class: 'empty' }, 'No suspects: no type grew steadily over the last ' + duration(leaks.window_s) + '.')]),
			...flameSection(suspects, sitesByType),
			el('h2', {}, 'Largest types'), typesTable(types),
			...gcSection(top.gc || leaks.gc),
			...notesSection(leaks, sitesByType),
			el('footer', {}, 'Written by pyleakctl ' + (data.pyleak_version || '') + ' with Chart.js ' +
				(window.Chart ? Chart.version : '(missing)') + '. Everything shown is in this file: it opens offline.'));
		for (const c of charts)
			if (c.draw)
				c.draw();
	}

	try {
		render();
	} catch (e) {
		document.getElementById('app').append(el('pre', { class: 'error' }, 'This report could not be drawn: ' + e));
		throw e;
	}
})();
