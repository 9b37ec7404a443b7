/**
 * @deprecated Only a forwarding module, kept while functions/swap/** (being rewritten elsewhere)
 * still imports from here: the use case is in `gatekeeper.ts`, the AWS adapters in `aws.ts`, the
 * placement-score port in `placement-scores.ts`. Delete this file once nothing imports it.
 */
export { Gatekeeper } from './gatekeeper';
export { Ec2SpotPriceSource } from './aws';
export { NoPlacementScores } from './placement-scores';
