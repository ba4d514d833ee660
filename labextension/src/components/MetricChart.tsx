import * as React from 'react';

/**
 * One line of a chart: a run's values of one metric over steps.
 */
export interface IChartSeries {
  label: string;
  points: { step: number; value: number }[];
}

export interface IMetricChartProps {
  title: string;
  series: IChartSeries[];
  width?: number;
  height?: number;
}

const COLORS = [
  'var(--jp-brand-color1)',
  'var(--jp-warn-color1)',
  'var(--jp-success-color1)',
  'var(--jp-error-color1)',
  'var(--jp-accent-color1)',
  'var(--jp-brand-color3)'
];

/**
 * A line chart of metric values over steps, drawn as SVG (no chart library:
 * nothing is fetched at run time). One line per run, with a legend.
 */
export function MetricChart(props: IMetricChartProps): JSX.Element {
  const { title, series } = props;
  const width = props.width ?? 260;
  const height = props.height ?? 150;
  const pad = { left: 40, right: 8, top: 8, bottom: 20 };
  const all: { step: number; value: number }[] = [];
  series.forEach(s => all.push(...s.points));
  if (all.length === 0) {
    return (
      <div className="jp-DataOps-chart jp-DataOps-muted" data-test="dataops-chart">
        {title}: —
      </div>
    );
  }
  const steps = all.map(p => p.step);
  const values = all.map(p => p.value);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  let [y0, y1] = [Math.min(...values), Math.max(...values)];
  if (y0 === y1) {
    y0 -= 1;
    y1 += 1;
  }
  const sx = (step: number) =>
    pad.left +
    (x1 === x0 ? 0.5 : (step - x0) / (x1 - x0)) *
      (width - pad.left - pad.right);
  const sy = (value: number) =>
    pad.top + (1 - (value - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const fmt = (v: number) => (Math.abs(v) >= 1000 ? v.toExponential(1) : +v.toPrecision(3));
  return (
    <figure className="jp-DataOps-chart" data-test="dataops-chart">
      <figcaption className="jp-DataOps-chart-title">{title}</figcaption>
      <svg
        width="100%"
        viewBox={`0 0 ${width} ${height}`}
        style={{ maxWidth: `${width * 1.5}px` }}
        role="img"
        aria-label={title}
      >
        <line
          x1={pad.left}
          y1={height - pad.bottom}
          x2={width - pad.right}
          y2={height - pad.bottom}
          className="jp-DataOps-chart-axis"
        />
        <line
          x1={pad.left}
          y1={pad.top}
          x2={pad.left}
          y2={height - pad.bottom}
          className="jp-DataOps-chart-axis"
        />
        <text x={pad.left - 4} y={pad.top + 8} textAnchor="end" className="jp-DataOps-chart-label">
          {fmt(y1)}
        </text>
        <text x={pad.left - 4} y={height - pad.bottom} textAnchor="end" className="jp-DataOps-chart-label">
          {fmt(y0)}
        </text>
        <text x={pad.left} y={height - 4} className="jp-DataOps-chart-label">
          {x0}
        </text>
        <text x={width - pad.right} y={height - 4} textAnchor="end" className="jp-DataOps-chart-label">
          {x1}
        </text>
        {series.map((s, i) => {
          const pts = [...s.points].sort((a, b) => a.step - b.step);
          const d = pts
            .map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.step).toFixed(1)},${sy(p.value).toFixed(1)}`)
            .join(' ');
          return (
            <g key={s.label} data-test="dataops-chart-series">
              <path d={d} fill="none" stroke={COLORS[i % COLORS.length]} strokeWidth={1.5} />
              {pts.length === 1 && (
                <circle cx={sx(pts[0].step)} cy={sy(pts[0].value)} r={2.5} fill={COLORS[i % COLORS.length]} />
              )}
            </g>
          );
        })}
      </svg>
      <ul className="jp-DataOps-chart-legend">
        {series.map((s, i) => (
          <li key={s.label}>
            <span
              className="jp-DataOps-chart-swatch"
              style={{ background: COLORS[i % COLORS.length] }}
            />
            {s.label}
          </li>
        ))}
      </ul>
    </figure>
  );
}
