import './base.css';
import './catalog.css';
import './jobs.css';
import './experiments.css';
