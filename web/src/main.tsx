/** The web console's entry point: mounts the app. */
import { render } from 'preact';
import './styles.css';

function App() {
  return <main><h1>Beacon console</h1></main>;
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
