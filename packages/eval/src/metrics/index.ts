export { classificationMetrics, predictionMetrics, MetricsAccumulator, type ClassificationMetrics } from './classification.js';
