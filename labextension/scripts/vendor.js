// Copies the npm packages that dashboards serve to browsers into the Python package
// (jupyter_dataops/labextension/vendor/), so no page ever loads them from a CDN:
//   html-manager/  @jupyter-widgets/html-manager's dist (embed-amd.js and its fonts)
//   requirejs/     require.js, which embed-amd.js needs
//   fontawesome/   @fortawesome/fontawesome-free's css and webfonts (the live view's icons)
const fs = require('fs');
const path = require('path');

const out = path.resolve(__dirname, '..', '..', 'jupyter_dataops', 'labextension', 'vendor');
const pkg = name => path.dirname(require.resolve(`${name}/package.json`));

function copy(from, to, keep = () => true) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, filter: src => keep(src) });
}

// The AMD bundle and the fonts its CSS names; not the standalone bundle nor source maps.
const widgetFiles = src =>
  fs.statSync(src).isDirectory() || /(^|[\\/])embed-amd\.js$|\.(eot|svg|ttf|woff2?)$|LICENSE\.txt$/.test(src);

fs.rmSync(out, { recursive: true, force: true });
copy(
  path.join(pkg('@jupyter-widgets/html-manager'), 'dist'),
  path.join(out, 'html-manager'),
  widgetFiles
);
copy(path.join(pkg('requirejs'), 'require.js'), path.join(out, 'requirejs', 'require.js'));
const fa = pkg('@fortawesome/fontawesome-free');
copy(path.join(fa, 'css'), path.join(out, 'fontawesome', 'css'));
copy(path.join(fa, 'webfonts'), path.join(out, 'fontawesome', 'webfonts'));
for (const name of ['@jupyter-widgets/html-manager', 'requirejs', '@fortawesome/fontawesome-free']) {
  const version = require(`${name}/package.json`).version;
  console.log(`vendored ${name}@${version} -> ${path.relative(process.cwd(), out)}`);
}
