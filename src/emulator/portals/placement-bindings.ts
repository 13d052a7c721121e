export interface PlacementBinding {
  readonly placement: string;
  readonly handler: string;
  readonly title: string;
  readonly description: string;
}

/** The app's placement handlers on one portal; one per (placement, handler). */
export class PlacementBindings {
  private readonly bindings: PlacementBinding[] = [];

  bind(binding: PlacementBinding): boolean {
    const taken = this.bindings.some(
      (bound) => bound.placement === binding.placement && bound.handler === binding.handler,
    );
    if (taken) return false;
    this.bindings.push(binding);
    return true;
  }

  unbind(placement: string, handler?: string): number {
    let removed = 0;
    for (let index = this.bindings.length - 1; index >= 0; index--) {
      const bound = this.bindings[index];
      if (bound.placement === placement && (handler === undefined || bound.handler === handler)) {
        this.bindings.splice(index, 1);
        removed++;
      }
    }
    return removed;
  }

  list(): PlacementBinding[] {
    return this.bindings.map((binding) => ({ ...binding }));
  }

  removeAll(): void {
    this.bindings.length = 0;
  }
}
