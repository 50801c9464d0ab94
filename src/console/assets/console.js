// Progressive enhancement only: the console works without this file.
// Draws usage charts from the data-chart attribute (JSON) of canvas elements, with Chart.js loaded on demand.
document.addEventListener('DOMContentLoaded', () => {
  const canvases = document.querySelectorAll('canvas[data-chart]');
  if (!canvases.length) return;
  const s = document.createElement('script');
  s.src = '/console/assets/chart.umd.js';
  s.onload = () => {
    for (const c of canvases) {
      const data = JSON.parse(c.getAttribute('data-chart'));
      new Chart(c, { type: 'bar', data, options: { animation: false, responsive: true, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: c.getAttribute('data-chart-unit') || 'tokens' } } } } });
    }
  };
  document.head.appendChild(s);
});
