// The module system: named parameters and buffers, layers, build contexts, module train steps.
export { Module, ModuleTensor, type LoadStateDictOptions, type ModuleTensorRole } from './module.js';
export { BuildContext, type BuildContextOptions, type BuildMode } from './context.js';
export { init } from './init.js';
export { checkStateDict } from './state-dict.js';
export { Layer, Lambda } from './layers/layer.js';
export { Linear, positiveSize } from './layers/linear.js';
export { Conv2d, type Conv2dLayerOptions } from './layers/conv2d.js';
export { BatchNorm2d, GroupNorm, LayerNorm } from './layers/normalization.js';
export { GELU, Identity, ReLU, Sigmoid, SiLU, Tanh } from './layers/activation.js';
export { ModuleDict, Sequential } from './layers/containers.js';
export { ModuleTrainStep, readTrainingState, type ModuleTrainStepOptions } from './trainer.js';
