// {{name}}: a weir enricher. Adds `total_with_tax` = `total` x (1 + `tax_rate`), with
// `tax_rate` from the configuration (default 0.1); drops events whose `status` is `test`;
// an event without a numeric `total` is an error (it is dead-lettered).

import { Enricher, exportEnricher } from './weir-sdk.js';

export class Plugin extends Enricher {
  constructor(taxRate) {
    super();
    this.taxRate = taxRate;
  }

  static configure(config) {
    config.rejectUnknown(['tax_rate']);
    return new Plugin(Number(config.get('tax_rate', '0.1')));
  }

  enrich(event) {
    if (event.getString('status') === 'test') return null;
    const total = event.getNumber('total');
    if (total === null) throw new Error('the event has no numeric total');
    return event.set('total_with_tax', Math.round(total * (1.0 + this.taxRate) * 100.0) / 100.0);
  }
}

// The `weir:plugin/enrich` export.
export const enrich = exportEnricher(Plugin);
