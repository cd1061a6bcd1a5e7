"""The page's stylesheet, inlined so the report needs no other file."""

CSS = """
:root { --ink:#1d2430; --muted:#667085; --line:#e4e7ec; --bg:#f6f7f9; --card:#fff; --accent:#3b5bdb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width:1240px; margin:0 auto; padding:24px; }
header.top { background:#1d2430; color:#fff; padding:22px 24px; }
header.top h1 { margin:0 0 4px; font-size:22px; }
header.top .sub { color:#c5ccd8; font-size:13px; word-break:break-all; }
h2 { font-size:19px; margin:0 0 4px; }
h3 { font-size:15px; margin:18px 0 6px; display:flex; align-items:center; gap:8px; }
h4 { font-size:14px; margin:14px 0 6px; }
a { color:var(--accent); }
code { font-size:12px; background:#eef0f4; padding:1px 4px; border-radius:3px; word-break:break-all; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 20px;
        margin:0 0 20px; }
.muted { color:var(--muted); }
.note { background:#fff8e1; border:1px solid #f1d98a; border-radius:6px; padding:6px 10px; margin:8px 0; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:10px; margin:12px 0; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.tile .v { font-size:22px; font-weight:600; }
.tile .v.small { font-size:14px; word-break:break-word; }
.tile .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.stages { display:flex; height:14px; border-radius:7px; overflow:hidden; margin:6px 0 4px; }
.stages span { display:block; height:100%; }
.legend span { display:inline-flex; align-items:center; gap:4px; margin-right:14px; font-size:12px; }
.legend i, .swatch { display:inline-block; width:12px; height:12px; border-radius:3px; }
.charts { display:flex; flex-wrap:wrap; gap:18px; margin:10px 0; }
.charts figure { margin:0; }
.charts figcaption { font-size:12px; color:var(--muted); margin:0 0 4px; font-weight:600; }
svg.chart { display:block; max-width:100%; height:auto; }
svg .axis { stroke:#98a2b3; stroke-width:1; }
svg .grid { stroke:#eef0f4; stroke-width:1; }
svg .tick { font-size:10px; fill:#667085; }
svg .label { font-size:11px; fill:#475467; }
svg .strong { font-weight:700; fill:#1d2430; }
svg .line { fill:none; stroke:var(--accent); stroke-width:2; }
svg .dot { fill:var(--accent); }
svg .chosen { fill:none; stroke:#d62728; stroke-width:2.5; }
svg .guide { stroke:#d62728; stroke-dasharray:4 3; stroke-width:1; }
svg .chosen.weak { stroke:#868e96; } svg .guide.weak { stroke:#adb5bd; }
svg .reference { stroke:#e8590c; stroke-dasharray:2 3; stroke-width:1; }
svg .pt { r:2.5px; opacity:.75; } svg .pt.pk { r:3.5px; opacity:1; stroke:#1d2430; stroke-width:1.2; }
svg .dense .pt { r:1.5px; } svg .dense .pt.pk { r:2.5px; }
svg .frame { fill:#fbfbfc; stroke:var(--line); }
svg .other { stroke-width:5; stroke-linecap:round; opacity:.6; fill:none; }
svg .kept { stroke-width:7; stroke-linecap:round; fill:none; }
svg .ring { stroke:#1d2430; stroke-width:9.5; stroke-linecap:round; fill:none; }
svg .dense .other { stroke-width:3; } svg .dense .kept { stroke-width:4.5; }
svg .dense .ring { stroke-width:6; }
svg .pale { fill:#9aa4b5; opacity:.45; }
svg .solid { fill:#475467; }
.sheet { display:flex; flex-wrap:wrap; gap:8px; }
.thumb { margin:0; width:104px; position:relative; }
.thumb .box { width:104px; height:104px; background:#eef0f4; border-radius:6px; overflow:hidden;
              display:flex; align-items:center; justify-content:center; }
.thumb a.open { display:block; border-radius:6px; }
.thumb img { width:100%; height:100%; object-fit:contain; display:block; }
.thumb figcaption { font-size:11px; color:var(--muted); line-height:1.25; overflow:hidden;
                    overflow-wrap:anywhere; display:-webkit-box; -webkit-line-clamp:2;
                    -webkit-box-orient:vertical; }
.thumb .score { font-size:10.5px; color:var(--ink); }
.thumb .none { font-size:10px; color:var(--muted); padding:4px; text-align:center; }
.thumb .zoomed { display:none; }
.kept .box { outline:3px solid var(--c,#3b5bdb); outline-offset:-3px; }
.strip { display:flex; flex-wrap:wrap; gap:6px; }
.strip .thumb, .strip .thumb .box { width:80px; }
.strip .thumb .box { height:80px; opacity:.85; }
/* The enlarged view: the figure itself, when the address names it (#v12), over a dimmed page. */
.thumb:target { position:fixed; inset:0; margin:auto; z-index:10; width:min(94vw,540px);
                height:fit-content; max-height:94vh; overflow:auto; background:#fff; padding:14px;
                border-radius:10px; box-shadow:0 0 0 100vmax rgba(16,20,28,.75); }
.thumb:target .box, .strip .thumb:target .box { width:100%; height:auto; aspect-ratio:1;
                max-height:60vh; opacity:1; }
.thumb:target img { image-rendering:auto; }
.thumb:target figcaption { display:block; font-size:13px; color:var(--ink); margin-top:6px; }
.thumb:target .zoomed { display:block; font-size:12.5px; }
/* The same facts as a card on hover or keyboard focus (scores included), without the links. */
.thumb:not(:target):hover .zoomed, .thumb:not(:target):focus-within .zoomed {
  display:block; position:absolute; left:0; top:100%; z-index:5; width:250px; font-size:11.5px;
  background:#fff; border:1px solid var(--line); border-radius:6px; padding:4px 8px;
  box-shadow:0 4px 14px rgba(16,20,28,.18); pointer-events:none; }
.thumb:not(:target) .zoomed p { display:none; }
.zoomed dl { display:grid; grid-template-columns:max-content 1fr; gap:2px 10px; margin:6px 0; }
.zoomed dt { color:var(--muted); } .zoomed dd { margin:0; overflow-wrap:anywhere; }
.cluster { border-top:1px solid var(--line); padding-top:4px; margin-top:10px; }
details > summary { cursor:pointer; }
details.group > summary { list-style:none; }
details.group > summary::-webkit-details-marker { display:none; }
details.group > summary h2::before { content:"▸ "; color:var(--muted); }
details.group[open] > summary h2::before { content:"▾ "; }
details.cluster > summary { list-style-position:outside; margin-left:16px; }
details.cluster > summary h3 { display:inline-flex; margin:10px 0 4px; }
details.images { margin-top:14px; border-top:1px solid var(--line); padding-top:8px; }
details.images > summary { font-weight:600; }
.controls { margin:8px 0; display:flex; flex-wrap:wrap; gap:8px 14px; align-items:center; font-size:13px; }
.controls input, .controls select { font:inherit; padding:2px 4px; }
.controls input[type=number] { width:6em; }
pre.list { max-height:480px; overflow:auto; font-size:12px; line-height:1.5; margin:6px 0;
           white-space:pre; background:#f8f9fb; border:1px solid var(--line); }
pre.list::first-line { font-weight:700; }
.note.weak { background:#f1f3f5; border-color:#ced4da; }
a:focus-visible, summary:focus-visible, button:focus-visible { outline:3px solid var(--accent);
                outline-offset:2px; }
svg a:focus-visible circle { stroke:#1d2430; stroke-width:3; }
@media (max-width: 600px) {
  main { padding:10px; } .card { padding:12px; } header.top { padding:14px 12px; }
  .thumb, .thumb .box { width:88px; } .thumb .box { height:88px; }
  table { display:block; overflow-x:auto; }  /* a wide table scrolls, not the page */
}
.sub { font-size:12px; color:var(--muted); margin:8px 0 4px; }
nav.toc { font-size:13px; }
nav.toc a { margin-right:10px; }
svg .band { fill:#c5ccd8; } svg .mean { stroke:#475467; stroke-width:2; }
svg .sel { stroke:#fff; stroke-width:1.5; }
svg .v-beats, .legend i.v-beats { fill:#2f9e44; } svg .v-within { fill:#868e96; }
svg .v-worse { fill:#e03131; } svg .v-none { fill:#3b5bdb; }
.legend i.sel { background:#2f9e44; border-radius:50%; } .legend i.band { background:#c5ccd8; }
.pill { display:inline-block; font-size:11px; font-weight:600; padding:1px 7px; border-radius:9px;
        white-space:nowrap; }
.pill.verdict-beats { background:#d3f9d8; color:#1b5e20; }
.pill.verdict-within { background:#eef0f4; color:#475467; }
.pill.verdict-worse { background:#ffe3e3; color:#a61e1e; }
.pill.verdict-none { background:#eef0f4; color:#98a2b3; }
.tile.verdict-beats .v { color:#2f9e44; } .tile.verdict-worse .v { color:#e03131; }
.tile.verdict-within .v { color:#667085; }
.better { color:#3b5bdb; font-weight:600; }
td .fig { white-space:nowrap; }
.pairs { display:flex; flex-wrap:wrap; gap:10px; }
.pair { border:1px solid var(--line); border-radius:8px; padding:8px; width:214px; }
.pair .two { display:flex; gap:6px; }
.pair .thumb { width:97px; } .pair .thumb .box { width:97px; height:97px; }
.pair .facts { font-size:11.5px; color:var(--muted); margin-top:4px; word-break:break-word; }
.pair .facts b { color:var(--ink); }
.status { font-size:10.5px; color:var(--muted); }
.status.selected { color:#2f9e44; font-weight:600; }
pre { background:#f3f4f7; padding:8px; border-radius:6px; overflow:auto; font-size:12px; }
"""
