export { eventually } from '@shop/local-clusters';
